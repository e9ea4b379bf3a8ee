"""Small-input ResNet-18 and MobileNetV2 (torchvision) for any class count, channel count and width."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import mobilenet_v2
from torchvision.models.resnet import BasicBlock, ResNet
from torchvision.ops.misc import Conv2dNormActivation

MODELS = ("resnet18", "mobilenet_v2")
RESNET18_STAGES = (64, 128, 256, 512)  # output channels of the four stages of the published network

# Small-input MobileNetV2: the stem keeps stride 1 (one early stride fewer than ImageNet's), so a 32x32
# input ends at 2x2 (32 -> 32 -> 16 -> 8 -> 4 -> 2). Removing the stage-2 stride as well quadruples the
# cost of the widest early layers (92 vs 26 MMACs at width 1), which CPU training here cannot afford.
MOBILENET_V2_SMALL = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2],
                      [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]


class SmallResNet18(ResNet):
    """torchvision's ResNet-18 with a 3x3 stride-1 stem, no max-pool and stage widths scaled by ``width``."""

    def __init__(self, num_classes: int, in_channels: int = 3, width: float = 1.0, channels: list | None = None):
        nn.Module.__init__(self)
        planes = list(channels) if channels is not None else [max(8, int(round(c * width))) for c in RESNET18_STAGES]
        self._norm_layer = nn.BatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = planes[0], 1, 1, 64
        self.conv1 = nn.Conv2d(in_channels, planes[0], kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity()
        self.layer1 = self._make_layer(BasicBlock, planes[0], 2)
        self.layer2 = self._make_layer(BasicBlock, planes[1], 2, stride=2)
        self.layer3 = self._make_layer(BasicBlock, planes[2], 2, stride=2)
        self.layer4 = self._make_layer(BasicBlock, planes[3], 2, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(planes[3], num_classes)
        _init_conv_bn(self)  # the linear layer keeps torch's default initialisation from its construction


def _small_mobilenet_v2(num_classes: int, in_channels: int, width: float) -> nn.Module:
    model = mobilenet_v2(num_classes=num_classes, width_mult=width, inverted_residual_setting=MOBILENET_V2_SMALL)
    stem_out = model.features[0][0].out_channels
    model.features[0] = Conv2dNormActivation(in_channels, stem_out, stride=1, norm_layer=nn.BatchNorm2d,
                                             activation_layer=nn.ReLU6)
    return model


def build_model(name: str, num_classes: int, in_channels: int = 3, width: float = 1.0,
                channels: list | None = None) -> nn.Module:
    """Build 'resnet18' or 'mobilenet_v2' adapted to small (32x32) inputs.

    ``width`` multiplies every layer's channel count (1.0 is the published network). ``channels`` (ResNet-18
    only) gives the four stages' output channels directly (see :func:`uniform_channels`) and overrides ``width``.
    Raises ValueError naming the bad argument and the allowed values.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer of at least 2, not {num_classes!r}")
    if in_channels not in (1, 3):
        raise ValueError(f"in_channels must be 1 or 3, not {in_channels!r}")
    if not 0.05 <= float(width) <= 4.0:
        raise ValueError(f"width must lie in [0.05, 4.0], not {width!r}")
    if channels is not None:
        if name != "resnet18":
            raise ValueError(f"explicit stage channels are built for resnet18 only, not {name!r}; give a width instead")
        if len(channels) != 4 or any(not isinstance(c, int) or c < 1 for c in channels):
            raise ValueError(f"resnet18 takes four positive stage channel counts, not {channels!r}")
    if name == "resnet18":
        return SmallResNet18(num_classes, in_channels, float(width), channels)
    return _small_mobilenet_v2(num_classes, in_channels, float(width))


def uniform_channels(base: list, fraction: float, round_to: int = 8) -> list[int]:
    """Stage channels of a uniformly narrower network: each of ``base`` times ``fraction``, rounded to the nearest
    multiple of ``round_to`` (halves up), as the plans' ``round_to`` keeps int8 kernels on aligned counts.

    Raises ValueError when a stage would keep no channel at this rounding (name the stage and the fix).
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"a uniform-width fraction must lie in (0, 1], not {fraction!r}")
    if not isinstance(round_to, int) or round_to < 1:
        raise ValueError(f"round_to must be a whole number of at least 1, not {round_to!r}")
    out = []
    for i, c in enumerate(base):
        kept = int(c * fraction / round_to + 0.5) * round_to
        if kept < 1:
            raise ValueError(f"width fraction {fraction} keeps no channel of stage {i + 1} ({c} channels) when rounded "
                             f"to multiples of {round_to}; choose a fraction of at least {round_to / 2 / c:.3f}")
        out.append(kept)
    return out


def stage_channels(model: nn.Module) -> list[int]:
    """Output channels per stage: ResNet-18's four stages, MobileNetV2's feature blocks (their last conv)."""
    if isinstance(model, ResNet):
        return [layer[-1].conv2.out_channels for layer in (model.layer1, model.layer2, model.layer3, model.layer4)]
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    return [convs[-1].out_channels] if convs else []


def reinitialise(model: nn.Module, seed: int | None = None) -> nn.Module:
    """Random initial weights for every layer of ``model`` (in place), as a network built here starts: Kaiming-normal
    convolutions (fan-out), BatchNorm at 1/0, linear layers by torch's default. Scratch-B controls use it on a pruned
    architecture. With ``seed``, torch's generator is seeded first."""
    if seed is not None:
        torch.manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.Linear):
            m.reset_parameters()
    _init_conv_bn(model)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
    return model


def _init_conv_bn(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def count_macs_params(model: nn.Module, input_size: int = 32, in_channels: int | None = None) -> tuple[int, int]:
    """(MACs, parameters) for one image, counted by torch-pruning's maintained op counter."""
    import torch_pruning as tp

    if in_channels is None:
        first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
        in_channels = first.in_channels
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    macs, params = tp.utils.count_ops_and_params(model, torch.zeros(1, in_channels, input_size, input_size, device=device))
    model.train(was_training)
    return int(macs), int(params)
