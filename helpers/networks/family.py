"""Smaller networks of a given network's family, scaled as EfficientNet and MnasNet scale: width per stage, depth
(blocks per stage) and the stem's stride; the input resolution is the data's (``fit`` resizes it).

Three families, recognised from the given module:

* ``resnet``: torchvision's ``ResNet`` built of ``BasicBlock`` (ResNet-18 and the workbench's small-input variant):
  per-stage channels in multiples of 8 (down to 8), blocks per stage, the stem kept as the given network has it
  (kernel, padding, max-pool) with its stride searched when the given stem has stride 1 (small inputs);
* ``mobilenet_v2``: torchvision's ``MobileNetV2``: a width multiplier per stage group (early, middle, late), a depth
  multiplier of the repeats, the given stem stride or, for a stride-1 stem, 1 or 2;
* ``generic``: any other ``nn.Module``: one keep fraction of every prunable layer group, found by torch-pruning's
  dependency graph on a copy (the pruned architecture is then re-initialised and trained from scratch).

``models.py`` is left alone: its code keys every trained checkpoint, and a family network is never one of those.
"""

from __future__ import annotations

import copy
import math

from torch import nn
from torchvision.models import MobileNetV2
from torchvision.models.resnet import BasicBlock, ResNet

__all__ = ["FAMILIES", "FamilyResNet", "family_of", "family_space", "build_member", "uniform_member", "small_resnet18",
           "small_mobilenet_v2"]

FAMILIES = ("resnet", "mobilenet_v2", "generic")
DEPTHS = (0.5, 0.75, 1.0)


def family_of(model: nn.Module) -> str:
    """The family ``model`` belongs to: resnet, mobilenet_v2 or generic (see the module's docstring)."""
    if isinstance(model, ResNet) and isinstance(model.layer1[0], BasicBlock):
        return "resnet"
    if isinstance(model, MobileNetV2):
        return "mobilenet_v2"
    return "generic"


def _resnet_shape(model) -> dict:
    stages = [model.layer1, model.layer2, model.layer3, model.layer4]
    conv = model.conv1
    return {"channels": [s[-1].conv2.out_channels for s in stages], "blocks": [len(s) for s in stages],
            "stem_kernel": conv.kernel_size[0], "stem_stride": conv.stride[0], "stem_padding": conv.padding[0],
            "maxpool": not isinstance(model.maxpool, nn.Identity), "in_channels": conv.in_channels,
            "num_classes": model.fc.out_features}


def _mnv2_shape(model) -> dict:
    from torchvision.models.mobilenetv2 import InvertedResidual

    stem = model.features[0][0]
    blocks = [m for m in model.features if isinstance(m, InvertedResidual)]
    setting, prev = [], None
    for b in blocks:  # rebuild the inverted-residual setting (t, c, n, s) from the blocks
        convs = [m for m in b.conv.modules() if isinstance(m, nn.Conv2d)]
        t = convs[0].out_channels // convs[0].in_channels if len(convs) == 3 else 1
        c, s = convs[-1].out_channels, max(m.stride[0] for m in convs)
        if prev is not None and prev[0] == t and prev[1] == c and s == 1:
            prev[2] += 1
        else:
            prev = [t, c, 1, s]
            setting.append(prev)
    return {"setting": setting, "stem_channels": stem.out_channels, "stem_stride": stem.stride[0],
            "in_channels": stem.in_channels,
            "num_classes": model.classifier[-1].out_features}


def family_space(model: nn.Module) -> list[dict]:
    """The architecture dimensions of ``model``'s family, in the search's free-parameter form (name, low/high or
    choices): widths as fractions of the given network's, depth as a multiplier of its blocks, the stem stride."""
    fam = family_of(model)
    if fam == "resnet":
        shape = _resnet_shape(model)
        dims = [{"name": f"width{i + 1}", "kind": "float", "low": 0.125, "high": 1.0} for i in range(4)]
        dims.append({"name": "depth", "choices": list(DEPTHS)})
        if shape["stem_stride"] == 1:
            dims.append({"name": "stem_stride", "choices": [1, 2]})
        return dims
    if fam == "mobilenet_v2":
        shape = _mnv2_shape(model)
        dims = [{"name": f"width_{g}", "kind": "float", "low": 0.25, "high": 1.0} for g in ("early", "middle", "late")]
        dims.append({"name": "depth", "choices": list(DEPTHS)})
        if shape["stem_stride"] == 1:
            dims.append({"name": "stem_stride", "choices": [1, 2]})
        return dims
    return [{"name": "width", "kind": "float", "low": 0.125, "high": 1.0}]


def _round8(c: float) -> int:
    return max(8, int(c / 8 + 0.5) * 8)


def _depth(n: int, d: float) -> int:
    return max(1, math.ceil(n * d))


def build_member(model: nn.Module, values: dict, example=None) -> nn.Module:
    """A freshly initialised member of ``model``'s family with the architecture ``values`` (see ``family_space``;
    absent keys keep the given network's value). ``example`` (one input batch) is needed for the generic family,
    whose narrower copy torch-pruning derives from the dependency graph. Deterministic given torch's seed."""
    from helpers.networks.models import reinitialise

    fam = family_of(model)
    if fam == "resnet":
        return _resnet_member(_resnet_shape(model), values)
    if fam == "mobilenet_v2":
        return _mnv2_member(_mnv2_shape(model), values)
    width = float(values.get("width", 1.0))
    net = copy.deepcopy(model).cpu().eval()
    if width < 1.0:
        import torch_pruning as tp

        if example is None:
            raise ValueError("a generic network's narrower member needs an example input to trace its layer groups")
        head = [m for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d))][-1]
        pruner = tp.pruner.MetaPruner(net, example, importance=tp.importance.RandomImportance(),
                                      pruning_ratio=1.0 - width, round_to=8, ignored_layers=[head])
        pruner.step()
    return reinitialise(net)


def uniform_member(model: nn.Module, fraction: float) -> dict:
    """The ``values`` of a uniformly narrower member (every width ``fraction``, full depth, the given stem stride)."""
    out = {}
    for d in family_space(model):
        if d["name"].startswith("width"):
            out[d["name"]] = float(fraction)
        elif d["name"] == "depth":
            out["depth"] = 1.0
        elif d["name"] == "stem_stride":
            out["stem_stride"] = 1
    return out


class FamilyResNet(ResNet):
    """torchvision's ResNet of BasicBlocks with any stage channels, blocks per stage and stem."""

    def __init__(self, in_channels, num_classes, planes, blocks, stem_kernel, stem_stride, stem_padding, maxpool):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = planes[0], 1, 1, 64
        self.conv1 = nn.Conv2d(in_channels, planes[0], kernel_size=stem_kernel, stride=stem_stride,
                               padding=stem_padding, bias=False)
        self.bn1 = nn.BatchNorm2d(planes[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1) if maxpool else nn.Identity()
        self.layer1 = self._make_layer(BasicBlock, planes[0], blocks[0])
        self.layer2 = self._make_layer(BasicBlock, planes[1], blocks[1], stride=2)
        self.layer3 = self._make_layer(BasicBlock, planes[2], blocks[2], stride=2)
        self.layer4 = self._make_layer(BasicBlock, planes[3], blocks[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(planes[3], num_classes)


def _resnet_member(shape: dict, values: dict) -> nn.Module:
    from helpers.networks.models import reinitialise

    widths = [float(values.get(f"width{i + 1}", 1.0)) for i in range(4)]
    planes = [_round8(c * w) for c, w in zip(shape["channels"], widths)]
    blocks = [_depth(n, float(values.get("depth", 1.0))) for n in shape["blocks"]]
    stride = int(values.get("stem_stride", shape["stem_stride"]))
    return reinitialise(FamilyResNet(shape["in_channels"], shape["num_classes"], planes, blocks, shape["stem_kernel"],
                                     stride, shape["stem_padding"], shape["maxpool"]))


def _mnv2_member(shape: dict, values: dict) -> nn.Module:
    from torchvision.ops.misc import Conv2dNormActivation

    from helpers.networks.models import reinitialise

    groups = {0: "early", 1: "early", 2: "early", 3: "middle", 4: "middle", 5: "late", 6: "late"}
    d = float(values.get("depth", 1.0))
    stem_out = _round8(shape["stem_channels"] * float(values.get("width_early", 1.0)))
    wm = stem_out / 32  # torchvision's stem has 32 x width_mult channels: the setting's counts are divided by it
    setting = []
    for i, (t, c, n, s) in enumerate(shape["setting"]):
        w = float(values.get(f"width_{groups.get(i, 'late')}", 1.0))
        setting.append([t, _round8(c * w) / wm, _depth(n, d), s])
    model = MobileNetV2(num_classes=shape["num_classes"], width_mult=wm, inverted_residual_setting=setting)
    stride = int(values.get("stem_stride", shape["stem_stride"]))
    model.features[0] = Conv2dNormActivation(shape["in_channels"], model.features[0][0].out_channels, stride=stride,
                                             norm_layer=nn.BatchNorm2d, activation_layer=nn.ReLU6)
    return reinitialise(model)


def small_resnet18(num_classes: int, in_channels: int = 1, width: float = 0.25) -> nn.Module:
    """The workbench's small-input ResNet-18 (x0.25 by default) as a ``module:function`` for ``fit --model``
    (``helpers.networks.family:small_resnet18``): the given network of ``benchmarks/bench_fit.py``."""
    from helpers.networks.models import build_model

    return build_model("resnet18", num_classes, in_channels, width)


def small_mobilenet_v2(num_classes: int, in_channels: int = 1, width: float = 0.5) -> nn.Module:
    """The workbench's small-input MobileNetV2 (x0.5 by default) as a ``module:function`` for ``fit --model``."""
    from helpers.networks.models import build_model

    return build_model("mobilenet_v2", num_classes, in_channels, width)
