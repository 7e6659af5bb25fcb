"""PyTorch twins of three keras_cnns models, for benchmarks/speed.py: the same layers, shapes and parameter
counts (tests/test_speed_helpers.py checks the counts, and lenet5's outputs with our weights copied in),
written as PyTorch users would (NCHW).

- :func:`lenet5`: keras_cnns' lenet5 (LeCun et al. 1998, 32x32x1 in): c1 6@5x5, s2 trainable 2x2
  subsampling (a coefficient and a bias per map), c3 16@5x5 over Table I's 60 (s2, c3) pairs (1,516
  parameters, placed into a dense kernel with zeros elsewhere, as ours does), s4, c5 120@5x5, f6 84, each
  squashed by 1.7159 tanh(2a/3); 10 Euclidean RBF units over fixed +/-1 prototypes (a parameter that does
  not train, so it counts as ours does). 60,840 parameters. Trained with the paper's energy loss
  (:func:`rbf_energy`, keras_cnns.losses.RBFEnergyLoss with j = 1). Table I is written out again here (a
  peer implementation imports nothing of ours; the test checks it against keras_cnns.models.lenet's), and
  the prototypes are seeded +/-1 codes, not our digit bitmaps: the same arithmetic, other values.
- :func:`lenet5_modern`: keras_cnns' lenet5_modern (28x28x1 in): c1 6@5x5 "same" + ReLU, 2x2 max-pool,
  c3 16@5x5 (full) + ReLU, 2x2 max-pool, c5 120@5x5 + ReLU, f6 84 + ReLU, 10 logits. 61,706 parameters.
- :func:`resnet20`: keras_cnns' resnet20 (He et al. 2015, CIFAR, 32x32x3 in): 3x3 conv 16 without bias,
  BN, ReLU; three stages of three basic blocks (16, 32, 64 filters; stride 2 entering stages 2 and 3);
  option-A shortcuts (subsample, append zero channels); global average pooling; 10 logits.
  269,722 parameters (BN's running statistics are buffers, not parameters, as in our count).

lenet5_modern and resnet20 end in logits: the cross-entropy loss takes them (our Keras models end in a softmax
and take the probabilities; the arithmetic differs by one softmax).

torchvision is imported through :func:`torchvision_models`: PyPI's torchvision wheel is built against
the CUDA torch, so with the CPU-only torch of benchmarks/requirements.txt its compiled detection ops
(nms, roi_align) do not load, and its import stops at registering their shape functions. The
classification models never call them: the registration module is skipped.
"""

import sys
import types


def torchvision_models():
    """torchvision.models, importable with the CPU-only torch (see the module docstring)."""
    try:
        import torchvision
    except RuntimeError:
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
        sys.modules["torchvision._meta_registrations"] = types.ModuleType("torchvision._meta_registrations")
        import torchvision
    return torchvision.models


# Table I of LeCun et al. 1998: the s2 maps each c3 map reads.
LENET5_C3_TABLE = ((0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (0, 4, 5), (0, 1, 5),
                   (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (0, 3, 4, 5), (0, 1, 4, 5), (0, 1, 2, 5),
                   (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5), (0, 1, 2, 3, 4, 5))


def lenet5(num_classes=10):
    import torch
    from torch import nn
    from torch.nn import functional as F

    def squash(x):
        return 1.7159 * torch.tanh(x * (2.0 / 3.0))

    class Subsampling(nn.Module):
        def __init__(self, maps):
            super().__init__()
            self.coefficient = nn.Parameter(torch.empty(maps).uniform_(-0.6, 0.6))   # +/-2.4 / 4 inputs
            self.bias = nn.Parameter(torch.zeros(maps))

        def forward(self, x):
            sums = F.avg_pool2d(x, 2) * 4.0
            return squash(sums * self.coefficient[:, None, None] + self.bias[:, None, None])

    class PartialConv(nn.Module):  # c3: output map j reads only the s2 maps of row j
        def __init__(self, table, size=5):
            super().__init__()
            pairs = [(i, j, len(row)) for j, row in enumerate(table) for i in row]   # (s2 map, c3 map, fan-in/25)
            fan_in = torch.tensor([n * size * size for _, _, n in pairs], dtype=torch.float32)
            self.weight = nn.Parameter((torch.rand(len(pairs), size, size) * 2 - 1) * (2.4 / fan_in)[:, None, None])
            self.bias = nn.Parameter(torch.zeros(len(table)))
            placement = torch.zeros(len(pairs), 1 + max(i for i, _, _ in pairs), len(table))
            for p, (i, j, _) in enumerate(pairs):
                placement[p, i, j] = 1.0
            self.register_buffer("placement", placement)

        def forward(self, x):  # the pairs' kernels placed into a dense 16x6x5x5 kernel, zeros elsewhere
            return F.conv2d(x, torch.einsum("pio,phw->oihw", self.placement, self.weight), self.bias)

    class LeNet5(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.s2 = nn.Conv2d(1, 6, 5), Subsampling(6)
            self.c3, self.s4 = PartialConv(LENET5_C3_TABLE), Subsampling(16)
            self.c5, self.f6 = nn.Conv2d(16, 120, 5), nn.Linear(120, 84)
            codes = torch.randint(0, 2, (num_classes, 84), generator=torch.Generator().manual_seed(1998))
            self.prototypes = nn.Parameter(codes.float() * 2 - 1, requires_grad=False)

        def forward(self, x):
            x = self.s2(squash(self.c1(x)))                       # 14x14x6
            x = self.s4(squash(self.c3(x)))                       # 5x5x16
            x = squash(self.f6(torch.flatten(squash(self.c5(x)), 1)))
            return ((x[:, None, :] - self.prototypes) ** 2).sum(-1)  # squared distance to each prototype

    return LeNet5()


def rbf_energy(distances, labels, j=1.0):
    """The paper's energy loss (eq. 9), batch mean: y_label + log(exp(-j) + sum_i exp(-y_i))."""
    import torch

    rubbish = torch.full_like(distances[:, :1], -j)
    competition = torch.logsumexp(torch.cat([rubbish, -distances], dim=1), dim=1)
    return (distances.gather(1, labels[:, None])[:, 0] + competition).mean()


def lenet5_modern(num_classes=10):
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),      # 28x28x6 -> 14x14x6
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),                # 10x10x16 -> 5x5x16
        nn.Conv2d(16, 120, 5), nn.ReLU(), nn.Flatten(),                 # 1x1x120
        nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, num_classes))


def resnet20(num_classes=10, blocks_per_stage=3):
    import torch
    from torch import nn
    from torch.nn import functional as F

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.stride, self.extra = stride, cout - cin

        def forward(self, x):
            y = F.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            shortcut = x[:, :, ::self.stride, ::self.stride]
            if self.extra:  # option A: zero channels appended
                shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, self.extra))
            return F.relu(y + shortcut)

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
            blocks, cin = [], 16
            for stage, cout in enumerate((16, 32, 64)):
                for b in range(blocks_per_stage):
                    blocks.append(Block(cin, cout, 2 if stage and not b else 1))
                    cin = cout
            self.blocks = nn.Sequential(*blocks)
            self.fc = nn.Linear(64, num_classes)

        def forward(self, x):
            x = self.blocks(self.stem(x))                 # N x 64 x 8 x 8
            return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    return ResNet()


# Each twin's builder and input shape (C x H x W); torchvision's peers take 224x224x3.
TWINS = {"lenet5": (lenet5, (1, 32, 32)), "lenet5_modern": (lenet5_modern, (1, 28, 28)),
         "resnet20": (resnet20, (3, 32, 32))}
TORCHVISION = ("vgg16", "resnet50")
PEERS = (*TWINS, *TORCHVISION)


def build(name):
    """(module, input shape C x H x W) of a PyTorch peer (a PEERS name): a twin (10 classes) or torchvision's
    vgg16 or resnet50 (1000 classes, weights=None)."""
    if name in TWINS:
        builder, shape = TWINS[name]
        return builder(), shape
    if name in TORCHVISION:
        return getattr(torchvision_models(), name)(weights=None), (3, 224, 224)
    raise ValueError(f"No PyTorch peer named {name!r}: one of {', '.join(PEERS)}.")


def num_classes(name):
    """The classes peer `name` is built with: torchvision's ImageNet 1000, the twins' 10."""
    return 1000 if name in TORCHVISION else 10


def loss(name):
    """The training loss of peer `name`, (outputs, labels) -> scalar: lenet5's energy over its distances,
    cross-entropy over the others' logits."""
    if name == "lenet5":
        return rbf_energy
    from torch.nn import functional as F

    return F.cross_entropy


def count_parameters(module):
    return sum(p.numel() for p in module.parameters())
