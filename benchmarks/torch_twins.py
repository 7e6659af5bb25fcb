"""PyTorch twins of two keras_cnns models, for benchmarks/speed.py: the same layers, shapes and parameter
counts (tests/test_speed_helpers.py checks the counts), written as PyTorch users would (NCHW).

- :func:`lenet5_modern`: keras_cnns' lenet5_modern (28x28x1 in): c1 6@5x5 "same" + ReLU, 2x2 max-pool,
  c3 16@5x5 (full) + ReLU, 2x2 max-pool, c5 120@5x5 + ReLU, f6 84 + ReLU, 10 logits. 61,706 parameters.
- :func:`resnet20`: keras_cnns' resnet20 (He et al. 2015, CIFAR, 32x32x3 in): 3x3 conv 16 without bias,
  BN, ReLU; three stages of three basic blocks (16, 32, 64 filters; stride 2 entering stages 2 and 3);
  option-A shortcuts (subsample, append zero channels); global average pooling; 10 logits.
  269,722 parameters (BN's running statistics are buffers, not parameters, as in our count).

The twins end in logits: the cross-entropy loss takes them (our Keras models end in a softmax and take
the probabilities; the arithmetic differs by one softmax).

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


def build(name):
    """(module, input shape C x H x W) of a PyTorch peer: "lenet5_modern", "resnet20" (the twins) or
    "vgg16", "resnet50" (torchvision's, 1000 classes, weights=None)."""
    if name == "lenet5_modern":
        return lenet5_modern(), (1, 28, 28)
    if name == "resnet20":
        return resnet20(), (3, 32, 32)
    if name in ("vgg16", "resnet50"):
        return getattr(torchvision_models(), name)(weights=None), (3, 224, 224)
    raise ValueError(f"No PyTorch peer named {name!r}: lenet5_modern, resnet20, vgg16 or resnet50.")


def count_parameters(module):
    return sum(p.numel() for p in module.parameters())
