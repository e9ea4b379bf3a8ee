"""torchvision's image-classification architectures as baselines a user brings (``baseline import``), kept apart
from ``models`` (the workbench's own small-input networks, whose code keys every trained checkpoint)."""

from __future__ import annotations

from torch import nn


def classifiers() -> list[str]:
    """torchvision's classification architectures by name (what ``baseline import --arch`` accepts)."""
    import torchvision

    return torchvision.models.list_models(module=torchvision.models)


def check(name: str) -> None:
    """One sentence (ValueError) for a name torchvision has no classification model of."""
    if name not in classifiers():
        raise ValueError(f"unknown architecture {name!r}: not one of torchvision's classification models (e.g. "
                         "mobilenet_v2, resnet18, shufflenet_v2_x0_5, squeezenet1_1)")


def build(name: str, num_classes: int, in_channels: int = 3) -> nn.Module:
    """torchvision's ``name`` with random weights and ``num_classes`` outputs; one sentence for a name it lacks or a
    channel count other than 3 (its stems take colour images; grey folders are loaded as 3 channels)."""
    import torchvision

    check(name)
    if in_channels != 3:
        raise ValueError(f"torchvision's {name} takes colour images (3 channels), not {in_channels}")
    return torchvision.models.get_model(name, weights=None, num_classes=num_classes)
