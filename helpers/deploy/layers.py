"""Split a classifier into the blocks it runs in order, and time each block in PyTorch (O4a)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torchvision.models import MobileNetV2
from torchvision.models.resnet import ResNet


class Head(nn.Module):
    """Global average pool, flatten and the classifier: the last block of both networks."""

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.classifier = classifier

    def forward(self, x):
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


@dataclass
class Block:
    name: str
    module: nn.Module
    kind: str  # stem, basic, inverted_residual, conv, head


def blocks(model: nn.Module) -> list[Block]:
    """The sequence of blocks whose composition is ``model``'s forward (ResNet and MobileNetV2 families).

    Raises TypeError for other architectures, naming the supported ones.
    """
    if isinstance(model, ResNet):
        out = [Block("stem", nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool), "stem")]
        for lname in ("layer1", "layer2", "layer3", "layer4"):
            for i, blk in enumerate(getattr(model, lname)):
                out.append(Block(f"{lname}.{i}", blk, "basic"))
        out.append(Block("head", Head(model.fc), "head"))
        return out
    if isinstance(model, MobileNetV2):
        out = []
        for i, f in enumerate(model.features):
            kind = "inverted_residual" if type(f).__name__ == "InvertedResidual" else ("stem" if i == 0 else "conv")
            out.append(Block(f"features.{i}", f, kind))
        out.append(Block("head", Head(model.classifier), "head"))
        return out
    raise TypeError(f"per-layer latency supports ResNet and MobileNetV2 models, not {type(model).__name__}")


@torch.no_grad()
def block_inputs(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The input each block receives when ``x`` runs through ``model`` (checked against the full forward)."""
    model.eval()
    inputs, h = [], x
    for b in blocks(model):
        inputs.append(h)
        h = b.module(h)
    if not torch.allclose(h, model(x), atol=1e-4, rtol=1e-4):
        raise RuntimeError(f"block decomposition of {type(model).__name__} does not reproduce its forward")
    return inputs


def block_structure(block: Block, x: torch.Tensor) -> dict:
    """What decides a block's latency: its type, input shape, output shape, conv channel/kernel/stride list."""
    with torch.no_grad():
        y = block.module(x)
    convs = [(m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0], m.groups)
             for m in block.module.modules() if isinstance(m, nn.Conv2d)]
    linears = [(m.in_features, m.out_features) for m in block.module.modules() if isinstance(m, nn.Linear)]
    return {"kind": block.kind, "in_shape": list(x.shape), "out_shape": list(y.shape), "convs": convs,
            "linears": linears}


@torch.no_grad()
def torch_block_latency(model: nn.Module, x: torch.Tensor, threads: int = 1, repeats: int = 15,
                        min_block_ms: float = 5.0) -> list[dict]:
    """Median eager-mode milliseconds of each block on the CPU, timed in isolation on its real input.

    Timing goes through ``latency.time_callable``, the harness every other latency in the project uses
    (warm-up, blocks sized to ``min_block_ms``, repeats, the noise guard).
    """
    import torch_pruning as tp

    from helpers.deploy.latency import time_callable

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    rows = []
    try:
        for b, inp in zip(blocks(model), block_inputs(model, x)):
            r = time_callable(lambda m=b.module, i=inp: m(i), b.name, "torch", threads, repeats,
                              min_block_ms=min_block_ms)
            macs, params = tp.utils.count_ops_and_params(b.module, inp)
            rows.append({"block": b.name, "kind": b.kind, "torch_ms": r.median_ms, "torch_iqr_ms": r.iqr_ms,
                         "macs": int(macs), "params": int(params), "in_shape": "x".join(map(str, inp.shape[1:]))})
    finally:
        torch.set_num_threads(previous)
    return rows
