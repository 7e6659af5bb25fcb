"""The recipes read like the papers' training sections; schedules do what the table says."""

import os

import keras
import pytest

import keras_cnns
from keras_cnns.training import recipes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _spec(name):
    return keras_cnns.get_spec(name)


def test_alexnet_trains_with_sgd_momentum_09_weight_decay_5e4_and_lr_001_divided_by_10_on_plateau():
    r = recipes.get_recipe(_spec("alexnet"), "paper")
    assert (r.optimizer, r.learning_rate, r.momentum, r.weight_decay) == ("sgd", 0.01, 0.9, 5e-4)
    assert (r.schedule, r.factor, r.max_drops, r.batch_size) == ("plateau", 0.1, 3, 128)
    assert recipes.plateau_callback(r).factor == pytest.approx(0.1)


def test_cifar_resnets_use_the_cifar_schedule_and_imagenet_resnets_the_imagenet_one():
    cifar = recipes.get_recipe(_spec("resnet20"), "paper")
    assert _spec("resnet20").recipe_family == "resnet_cifar"  # named on its spec, not guessed from its size
    assert (cifar.learning_rate, cifar.weight_decay, cifar.boundaries, cifar.epochs) == (0.1, 1e-4, (82, 123), 164)
    imagenet = recipes.get_recipe(_spec("resnet50"), "paper")
    assert (imagenet.batch_size, imagenet.learning_rate, imagenet.momentum) == (256, 0.1, 0.9)


def test_googlenet_weights_its_auxiliary_losses_03_and_decays_lr_4_percent_every_8_epochs():
    r = recipes.get_recipe(_spec("googlenet"), "paper")
    assert r.aux_weight == 0.3 and (r.schedule, r.factor, r.every) == ("exponential", 0.96, 8)
    lr = recipes.learning_rate_schedule(r, steps_per_epoch=10, epochs=120)
    assert float(lr(79)) == pytest.approx(0.01) and float(lr(80)) == pytest.approx(0.0096)


def test_a_step_schedule_changes_the_rate_at_its_epoch_boundaries():
    r = recipes.get_recipe(_spec("lenet5"), "paper")
    lr = recipes.learning_rate_schedule(r, steps_per_epoch=100, epochs=r.epochs)
    rates = [float(lr(epoch * 100)) for epoch in range(r.epochs)]
    assert rates[0] == pytest.approx(r.learning_rate)
    drops = [e for e in range(1, r.epochs) if rates[e] < rates[e - 1] - 1e-12]
    assert tuple(drops) == r.boundaries


def test_cosine_with_warmup_starts_at_zero_peaks_then_decays():
    r = recipes.get_recipe(_spec("resnet20"), "fast")
    lr = recipes.learning_rate_schedule(r, steps_per_epoch=10, epochs=r.epochs)
    assert float(lr(0)) == pytest.approx(0.0)
    assert float(lr(10)) == pytest.approx(r.learning_rate)
    assert float(lr(10 * r.epochs)) < 1e-6


def test_sgd_recipes_build_sgd_with_their_weight_decay():
    opt = recipes.build_optimizer(recipes.get_recipe(_spec("vgg16"), "paper"), 100, 74)
    assert isinstance(opt, keras.optimizers.SGD) and opt.weight_decay == pytest.approx(5e-4)
    assert opt.momentum == pytest.approx(0.9)


def test_an_unknown_recipe_is_refused_with_the_allowed_names():
    with pytest.raises(ValueError, match="recipe must be one of \\('paper', 'fast'\\). Received: recipe='slow'"):
        recipes.get_recipe(_spec("lenet5"), "slow")
    with pytest.raises(ValueError, match="Received: optimizer='rmsprop'"):
        recipes.Recipe(family="x", name="paper", optimizer="rmsprop", learning_rate=1, epochs=1, batch_size=1)


def test_docs_show_the_table_of_the_code():
    with open(os.path.join(ROOT, "docs", "training.md")) as f:
        assert recipes.table_markdown() in f.read()


def test_every_model_that_trains_names_a_family_with_paper_and_fast_recipes():
    keras_cnns.list_models()  # registers every family
    for name in keras_cnns.list_models():
        spec = _spec(name)
        if spec.task == "retrieval":
            continue  # the autoencoders train through keras_cnns.tasks.retrieval's own loop
        for recipe in ("paper", "fast"):
            assert (spec.recipe_family, recipe) in recipes.RECIPES, (name, recipe)
