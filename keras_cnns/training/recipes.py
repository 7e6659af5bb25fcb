"""Training recipes as data: one row per family and recipe name, from the papers ("paper") and tuned for a
CPU and Fashion-MNIST ("fast").

A :class:`Recipe` says which optimizer, learning-rate schedule, batch size, epochs, augmentation and loss
weights a family trains with; :func:`build_optimizer` turns it into a Keras optimizer (plus the callbacks a
plateau schedule needs). Schedules are written in epochs and converted to steps once the number of steps
per epoch is known.

Weight decay is Keras' decoupled form (``w -= lr * wd * w`` each step), which for plain SGD is the L2
penalty ``wd/2 * |w|^2`` the papers use; with momentum the two differ slightly.
"""

import dataclasses
from typing import Optional, Tuple

import keras

RECIPE_NAMES = ("paper", "fast")
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "step", "plateau", "exponential", "cosine")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How one family trains.

    Attributes:
      family: the registry family ("lenet", "resnet_cifar", ...).
      name: "paper" or "fast".
      optimizer: "sgd" or "adam".
      learning_rate: initial learning rate.
      momentum: SGD momentum (ignored by Adam).
      nesterov: SGD Nesterov momentum.
      weight_decay: decoupled weight decay (0 for none).
      schedule: "constant"; "step" (multiply by ``factor`` at each epoch in ``boundaries``); "plateau"
        (multiply by ``factor`` when validation loss stalls for ``patience`` epochs, at most
        ``max_drops`` times); "exponential" (multiply by ``factor`` every ``every`` epochs, staircase);
        "cosine" (cosine decay to 0 over the run, after ``warmup`` epochs of linear warm-up).
      boundaries, factor, patience, max_drops, every, warmup: schedule parameters (in epochs).
      epochs, batch_size: defaults for the run (the global batch size).
      augment: a ``keras_cnns.data.AUGMENTATIONS`` name or None.
      aux_weight: weight of each auxiliary classifier's loss (GoogLeNet's 0.3); 0 trains without them.
      source: where the numbers come from and what differs from the paper.
    """

    family: str
    name: str
    optimizer: str
    learning_rate: float
    epochs: int
    batch_size: int
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: str = "constant"
    boundaries: Tuple[int, ...] = ()
    factor: float = 0.1
    patience: int = 5
    max_drops: int = 3
    every: int = 1
    warmup: int = 0
    augment: Optional[str] = None
    aux_weight: float = 0.0
    source: str = ""

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"Recipe {self.family}/{self.name}: optimizer must be one of {OPTIMIZERS}. "
                             f"Received: optimizer={self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"Recipe {self.family}/{self.name}: schedule must be one of {SCHEDULES}. "
                             f"Received: schedule={self.schedule!r}")

    def to_dict(self):
        return dataclasses.asdict(self)


def _r(family, name, **kwargs):
    return Recipe(family=family, name=name, **kwargs)


# One table: (family, recipe name) -> Recipe. Families with a CIFAR-sized variant in the zoo have a
# second row keyed "<family>_cifar", which their CIFAR-sized members name on their spec (``recipe=``).
RECIPES = {(r.family, r.name): r for r in [
    # LeNet-5 (LeCun et al. 1998). The paper trains with stochastic diagonal Levenberg-Marquardt (SDLM,
    # a per-weight step from a running estimate of the Hessian's diagonal) for 20 passes with a global step
    # 0.0005 (2 passes), 0.0002 (3), 0.0001 (3), 0.00005 (4), then 0.00001. Keras has no SDLM: we keep the
    # shape of that staircase (the same epoch boundaries, step x0.4-0.5) on Adam, whose per-weight scaling
    # plays SDLM's role, and the paper's RBF energy loss (keras_cnns.losses). The paper's 20 passes and its
    # stage boundaries (after passes 2, 5, 8 and 12).
    _r("lenet", "paper", optimizer="adam", learning_rate=2e-3, epochs=20, batch_size=64,
       schedule="step", boundaries=(2, 5, 8, 12), factor=0.4,
       source="LeCun et al. 1998 sec. II-B and III-C: SDLM replaced by Adam on the paper's staircase "
              "(20 passes, steps after passes 2, 5, 8, 12; x0.4 each instead of the paper's uneven ratios); "
              "mini-batches of 64 instead of single examples."),
    _r("lenet", "fast", optimizer="adam", learning_rate=2e-3, epochs=15, batch_size=128, schedule="cosine",
       augment="flip", source="Adam with cosine decay and horizontal flips: a few minutes on a CPU."),
    # AlexNet (Krizhevsky et al. 2012, sec. 5).
    _r("alexnet", "paper", optimizer="sgd", learning_rate=0.01, momentum=0.9, weight_decay=5e-4,
       epochs=90, batch_size=128, schedule="plateau", factor=0.1, patience=5, max_drops=3, augment="alexnet",
       source="Krizhevsky et al. 2012 sec. 5: SGD 0.01, momentum 0.9, weight decay 5e-4, lr /10 when the "
              "validation error stops improving (three times), ~90 epochs, crops + flips + PCA colour."),
    _r("alexnet", "fast", optimizer="sgd", learning_rate=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4,
       epochs=10, batch_size=128, schedule="cosine", warmup=1, augment="flip", source="SGD + cosine decay."),
    # VGG (Simonyan & Zisserman 2014, sec. 3.1).
    _r("vgg", "paper", optimizer="sgd", learning_rate=0.01, momentum=0.9, weight_decay=5e-4, epochs=74,
       batch_size=256, schedule="plateau", factor=0.1, patience=5, max_drops=3, augment="scale_jitter",
       source="Simonyan & Zisserman 2014 sec. 3.1: batch 256, SGD 0.01, momentum 0.9, weight decay 5e-4, "
              "lr /10 on validation plateau (3 times), 74 epochs, scale jittering."),
    _r("vgg_cifar", "paper", optimizer="sgd", learning_rate=0.01, momentum=0.9, weight_decay=5e-4, epochs=74,
       batch_size=128, schedule="plateau", factor=0.1, patience=5, max_drops=3, augment="cifar",
       source="The VGG protocol at CIFAR size (pad-4 crops + flips instead of scale jittering)."),
    _r("vgg", "fast", optimizer="sgd", learning_rate=0.02, momentum=0.9, nesterov=True, weight_decay=5e-4,
       epochs=10, batch_size=128, schedule="cosine", warmup=1, augment="flip", source="SGD + cosine decay."),
    _r("vgg_cifar", "fast", optimizer="sgd", learning_rate=0.05, momentum=0.9, nesterov=True,
       weight_decay=5e-4, epochs=15, batch_size=128, schedule="cosine", warmup=1, augment="cifar",
       source="SGD + cosine decay."),
    # vgg16_slim (not in the paper): 16 plain layers of 8..64 filters from Glorot starts stall at chance under
    # SGD 0.02 (the paper trained D from A's weights for that reason); Adam starts them, as it does the slim FCNs.
    _r("vgg_slim", "paper", optimizer="sgd", learning_rate=0.01, momentum=0.9, weight_decay=5e-4, epochs=74,
       batch_size=128, schedule="plateau", factor=0.1, patience=5, max_drops=3, augment="cifar",
       source="The VGG protocol at CIFAR size, as vgg_cifar's (from Glorot starts it may stall: use fast)."),
    _r("vgg_slim", "fast", optimizer="adam", learning_rate=1e-3, weight_decay=0.0, epochs=10, batch_size=128,
       schedule="cosine", warmup=1, augment="flip",
       source="Adam + cosine decay: the slim FCNs' classifier twin from scratch on a CPU."),
    # ResNet (He et al. 2015, sec. 3.4 for ImageNet, sec. 4.2 for CIFAR-10).
    _r("resnet", "paper", optimizer="sgd", learning_rate=0.1, momentum=0.9, weight_decay=1e-4, epochs=90,
       batch_size=256, schedule="step", boundaries=(30, 60), factor=0.1, augment="scale_jitter",
       source="He et al. 2015 sec. 3.4: batch 256, SGD 0.1, momentum 0.9, weight decay 1e-4, lr /10 "
              "(the paper on plateaus; here at epochs 30 and 60, the usual fixed form), 60e4 iterations."),
    _r("resnet_cifar", "paper", optimizer="sgd", learning_rate=0.1, momentum=0.9, weight_decay=1e-4,
       epochs=164, batch_size=128, schedule="step", boundaries=(82, 123), factor=0.1, augment="cifar",
       source="He et al. 2015 sec. 4.2: batch 128, lr 0.1 /10 at 32k and 48k iterations, stop at 64k "
              "(epochs 82, 123, 164 of 45k images), weight decay 1e-4, momentum 0.9, pad-4 crops + flips."),
    _r("resnet", "fast", optimizer="sgd", learning_rate=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4,
       epochs=10, batch_size=128, schedule="cosine", warmup=1, augment="flip", source="SGD + cosine decay."),
    _r("resnet_cifar", "fast", optimizer="sgd", learning_rate=0.1, momentum=0.9, nesterov=True,
       weight_decay=5e-4, epochs=15, batch_size=128, schedule="cosine", warmup=1, augment="cifar",
       source="SGD + cosine decay with one warm-up epoch; weight decay 5e-4 for the short run."),
    # Network in Network (Lin et al. 2013, sec. 4.1): "follows Krizhevsky et al.": SGD with momentum,
    # mini-batches of 128, lr /10 when the validation accuracy stops improving; the paper gives no
    # constants. The values below are the usual ones for this protocol.
    _r("nin", "paper", optimizer="sgd", learning_rate=0.01, momentum=0.9, weight_decay=5e-4, epochs=90,
       batch_size=128, schedule="plateau", factor=0.1, patience=5, max_drops=3, augment="alexnet",
       source="Lin et al. 2013 sec. 4.1 (Krizhevsky's protocol; constants not given in the paper)."),
    _r("nin_cifar", "paper", optimizer="sgd", learning_rate=0.1, momentum=0.9, weight_decay=1e-4, epochs=120,
       batch_size=128, schedule="plateau", factor=0.1, patience=8, max_drops=3, augment=None,
       source="Lin et al. 2013 sec. 4.2 without augmentation (10.41% reported); constants not given."),
    _r("nin", "fast", optimizer="sgd", learning_rate=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4,
       epochs=10, batch_size=128, schedule="cosine", warmup=1, augment="flip", source="SGD + cosine decay."),
    _r("nin_cifar", "fast", optimizer="adam", learning_rate=2e-3, weight_decay=0.0, epochs=15,
       batch_size=128, schedule="cosine", warmup=1, augment="cifar", source="Adam + cosine decay."),
    # GoogLeNet (Szegedy et al. 2014, sec. 6): asynchronous SGD, momentum 0.9, lr -4% every 8 epochs,
    # auxiliary losses weighted 0.3. The initial lr is not in the paper; Polyak averaging is not used.
    _r("googlenet", "paper", optimizer="sgd", learning_rate=0.01, momentum=0.9, weight_decay=2e-4, epochs=120,
       batch_size=128, schedule="exponential", factor=0.96, every=8, augment="alexnet", aux_weight=0.3,
       source="Szegedy et al. 2014 sec. 6: momentum 0.9, lr x0.96 every 8 epochs, aux losses x0.3; "
              "synchronous instead of asynchronous SGD; no Polyak averaging; initial lr 0.01 (not given)."),
    _r("googlenet", "fast", optimizer="sgd", learning_rate=0.05, momentum=0.9, nesterov=True,
       weight_decay=1e-4, epochs=10, batch_size=128, schedule="cosine", warmup=1, augment="flip",
       aux_weight=0.3, source="SGD + cosine decay, aux losses x0.3."),
    # FCN (Long et al. 2015, sec. 4.3): SGD momentum 0.9, minibatch 20, fixed lr 1e-4 for FCN-VGG16,
    # weight decay 5e-4 (Caffe summed the per-pixel losses; we average them, so a larger rate serves).
    _r("fcn", "paper", optimizer="sgd", learning_rate=1e-2, momentum=0.9, weight_decay=5e-4, epochs=50,
       batch_size=20, schedule="constant", augment=None,
       source="Long et al. 2015 sec. 4.3: SGD momentum 0.9, batch 20, fixed lr, wd 5e-4; lr 1e-2 for the "
              "per-pixel mean loss (the paper's 1e-4 is for Caffe's summed loss); 50 epochs (our choice)."),
    _r("fcn", "fast", optimizer="adam", learning_rate=2e-3, weight_decay=0.0, epochs=12, batch_size=32,
       schedule="cosine", warmup=1, augment=None, source="Adam + cosine decay, for the slim FCNs on a CPU."),
    # Faster R-CNN (Ren et al. 2015, sec. 3.3; He et al. 2015 appendix A for ResNet): SGD momentum 0.9, weight decay
    # 1e-4 (ResNet; 5e-4 for VGG), lr 0.001 then x0.1 for the last quarter (VOC: 60k + 20k iterations of 1 image).
    _r("frcnn", "paper", optimizer="sgd", learning_rate=1e-3, momentum=0.9, weight_decay=1e-4, epochs=16,
       batch_size=1, schedule="step", boundaries=(12,), factor=0.1, augment=None,
       source="Ren et al. 2015 sec. 3.3: SGD momentum 0.9, 1 image per batch, lr 0.001 then 0.0001 for the last "
              "quarter, weight decay 1e-4 (ResNet); 16 epochs of the scenes (our choice)."),
    _r("frcnn", "fast", optimizer="adam", learning_rate=1e-3, weight_decay=0.0, epochs=16, batch_size=8,
       schedule="cosine", warmup=1, augment=None,
       source="Adam + cosine decay, 8 scenes per batch: the small detector from scratch on a CPU."),
]}


CPU_MIN_SIZE = 32   # below this the 224x224 models lose most of their stages to 1x1 maps


DEFAULT_DATASETS = {"classification": "fashion_mnist", "segmentation": "fashion_mnist_scenes",
                    "detection": "fashion_mnist_scenes"}
"""What a model of each task trains on when no dataset is given (the built-in data)."""


def cpu_input_size(spec):
    """The input size at which a model trains on a CPU in minutes, not days: its own when that is already
    small (LeNet-5 32, lenet5_modern 28, the CIFAR nets 32), else the smallest size its architecture
    accepts but no less than 32 (GoogLeNet, ResNet-50, VGG-16: 32; AlexNet and NIN: 67)."""
    return min(spec.input_shape[0], max(CPU_MIN_SIZE, spec.min_input_size))


def cpu_train_command(spec, dataset=None):
    """The apps/train.py command that trains `spec` with the fast recipe at :func:`cpu_input_size` (a fully
    convolutional model trains at its data's own size)."""
    dataset = dataset or DEFAULT_DATASETS[spec.task]
    size = "" if spec.input_shape[0] is None else f" --input-size {cpu_input_size(spec)}"
    return f"python apps/train.py --model {spec.name} --dataset {dataset} --recipe fast{size}"


def get_recipe(spec, name="paper"):
    """The :class:`Recipe` for a model (a ModelSpec) and a recipe name; a Recipe passes through."""
    if isinstance(name, Recipe):
        return name
    if name not in RECIPE_NAMES:
        raise ValueError(f"recipe must be one of {RECIPE_NAMES}. Received: recipe={name!r}")
    family = spec.recipe_family
    if (family, name) not in RECIPES:
        known = sorted({f for f, _ in RECIPES})
        raise ValueError(f"No {name!r} recipe for the {family!r} family (model {spec.name!r}); recipes exist "
                         f"for {', '.join(known)}. Received: recipe={name!r}")
    return RECIPES[(family, name)]


def learning_rate_schedule(recipe, steps_per_epoch, epochs):
    """The recipe's learning rate: a float (constant / plateau) or a keras LearningRateSchedule in steps."""
    lr = recipe.learning_rate
    steps_per_epoch = max(1, int(steps_per_epoch))
    if recipe.schedule in ("constant", "plateau"):
        return lr
    if recipe.schedule == "step":
        # PiecewiseConstantDecay switches after a boundary step: the first step of epoch b (0-based) is
        # step b * steps_per_epoch, so the boundary is the step before it.
        bounds = [b * steps_per_epoch - 1 for b in recipe.boundaries if b < epochs]
        values = [lr * recipe.factor ** i for i in range(len(bounds) + 1)]
        return keras.optimizers.schedules.PiecewiseConstantDecay(bounds, values) if bounds else lr
    if recipe.schedule == "exponential":
        return keras.optimizers.schedules.ExponentialDecay(
            lr, decay_steps=recipe.every * steps_per_epoch, decay_rate=recipe.factor, staircase=True)
    warmup = min(recipe.warmup, max(epochs - 1, 0)) * steps_per_epoch
    decay = max(1, epochs * steps_per_epoch - warmup)
    if warmup:
        return keras.optimizers.schedules.CosineDecay(0.0, decay, warmup_target=lr, warmup_steps=warmup)
    return keras.optimizers.schedules.CosineDecay(lr, decay)


def build_optimizer(recipe, steps_per_epoch, epochs):
    """A fresh Keras optimizer for the recipe (build it inside the strategy scope)."""
    lr = learning_rate_schedule(recipe, steps_per_epoch, epochs)
    wd = recipe.weight_decay or None
    if recipe.optimizer == "adam":
        if wd:
            return keras.optimizers.AdamW(lr, weight_decay=wd)
        return keras.optimizers.Adam(lr)
    return keras.optimizers.SGD(lr, momentum=recipe.momentum, nesterov=recipe.nesterov, weight_decay=wd)


def plateau_callback(recipe):
    """ReduceLROnPlateau for "plateau" recipes (None otherwise): lr x factor when val_loss stalls."""
    if recipe.schedule != "plateau":
        return None
    floor = recipe.learning_rate * recipe.factor ** recipe.max_drops
    return keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=recipe.factor,
                                             patience=recipe.patience, min_lr=floor * 0.999, verbose=1)


def table_markdown():
    """The recipes table as markdown (docs/training.md prints it; a test checks they agree)."""
    rows = ["| family | recipe | optimizer | lr | schedule | wd | batch | epochs | augment | aux |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for (family, name), r in sorted(RECIPES.items()):
        opt = r.optimizer + (f" m{r.momentum}" if r.optimizer == "sgd" else "") + (" nesterov" if r.nesterov else "")
        if r.schedule == "step":
            sched = f"x{r.factor} at epochs {', '.join(map(str, r.boundaries))}"
        elif r.schedule == "plateau":
            sched = f"x{r.factor} on plateau ({r.patience} epochs, {r.max_drops}x)"
        elif r.schedule == "exponential":
            sched = f"x{r.factor} every {r.every} epochs"
        elif r.schedule == "cosine":
            sched = "cosine" + (f", {r.warmup} warm-up epoch" if r.warmup else "")
        else:
            sched = "constant"
        rows.append(f"| {family} | {name} | {opt} | {r.learning_rate:g} | {sched} | {r.weight_decay:g} | "
                    f"{r.batch_size} | {r.epochs} | {r.augment or '-'} | {r.aux_weight:g} |")
    return "\n".join(rows)
