"""Low-rank factorisation: truncated SVD of linear layers and Tucker-2 of convolutions (tensorly)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from helpers.compress.registry import Param, check, register


def _rank_from(singular: np.ndarray, full: int, ratio: float, energy: float | None) -> int:
    if energy is not None and energy > 0:
        cum = np.cumsum(singular ** 2) / max(np.sum(singular ** 2), 1e-12)
        return int(min(full, np.searchsorted(cum, energy) + 1))
    return max(1, int(round(ratio * full)))


def _set(model: nn.Module, name: str, module: nn.Module) -> None:
    parent = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
    setattr(parent, name.rsplit(".", 1)[-1], module)


class Factorised(nn.Sequential):
    """A layer replaced by its low-rank factors; ``rank`` records the inner dimension(s)."""

    def __init__(self, *layers, rank):
        super().__init__(*layers)
        self.rank = rank


def svd_linear(layer: nn.Linear, ratio: float, energy: float | None) -> Factorised:
    """W (out x in) ~ (U sqrt(S)) (sqrt(S) V^T) as two linear layers of inner size r."""
    w = layer.weight.detach()
    u, s, vh = torch.linalg.svd(w, full_matrices=False)
    r = _rank_from(s.numpy(), min(w.shape), ratio, energy)
    root = s[:r].sqrt()
    first = nn.Linear(w.shape[1], r, bias=False)
    second = nn.Linear(r, w.shape[0], bias=layer.bias is not None)
    first.weight.data = (root[:, None] * vh[:r]).contiguous()
    second.weight.data = (u[:, :r] * root[None, :]).contiguous()
    if layer.bias is not None:
        second.bias.data = layer.bias.detach().clone()
    return Factorised(first, second, rank=(r,))


def tucker2_conv(conv: nn.Conv2d, ratio: float, energy: float | None) -> Factorised:
    """Tucker-2 over the output and input channel modes: 1x1 (in -> r_in), kxk core, 1x1 (r_out -> out)."""
    import tensorly as tl
    from tensorly.decomposition import partial_tucker

    w = conv.weight.detach().numpy()
    out_c, in_c = w.shape[:2]
    if energy is not None and energy > 0:
        r_out = _rank_from(np.linalg.svd(w.reshape(out_c, -1), compute_uv=False), out_c, ratio, energy)
        r_in = _rank_from(np.linalg.svd(w.transpose(1, 0, 2, 3).reshape(in_c, -1), compute_uv=False), in_c, ratio, energy)
    else:
        r_out, r_in = max(1, int(round(ratio * out_c))), max(1, int(round(ratio * in_c)))
    tl.set_backend("numpy")
    (core, (u_out, u_in)), _ = partial_tucker(w, rank=[r_out, r_in], modes=[0, 1], init="svd", random_state=0)
    first = nn.Conv2d(in_c, r_in, 1, bias=False)
    middle = nn.Conv2d(r_in, r_out, conv.kernel_size, conv.stride, conv.padding, conv.dilation, bias=False)
    last = nn.Conv2d(r_out, out_c, 1, bias=conv.bias is not None)
    first.weight.data = torch.from_numpy(np.ascontiguousarray(u_in.T[:, :, None, None])).float()
    middle.weight.data = torch.from_numpy(np.ascontiguousarray(core)).float()
    last.weight.data = torch.from_numpy(np.ascontiguousarray(u_out[:, :, None, None])).float()
    if conv.bias is not None:
        last.bias.data = conv.bias.detach().clone()
    return Factorised(first, middle, last, rank=(r_out, r_in))


def _targets(model: nn.Module, kind: str, min_channels: int):
    for name, m in list(model.named_modules()):
        if kind == "linear" and isinstance(m, nn.Linear) and min(m.weight.shape) >= min_channels:
            yield name, m
        if (kind == "conv" and isinstance(m, nn.Conv2d) and m.groups == 1 and m.kernel_size[0] > 1
                and min(m.in_channels, m.out_channels) >= min_channels):
            yield name, m


LOWRANK_PARAMS = {
    "rank_ratio": Param("float", 0.5, "kept rank as a fraction of the full rank", 0.01, 1.0),
    "energy": Param("float", 0.0, "if > 0, keep the smallest rank retaining this share of energy (overrides rank_ratio)",
                    0.0, 1.0),
    "min_channels": Param("int", 8, "leave layers with fewer channels than this untouched", 1, 4096),
}


def _verify(kind: str):
    def verify(before, after, p, ctx, artifact):
        layer = nn.Linear if kind == "linear" else nn.Conv2d
        fact = [(n, m) for n, m in after.named_modules() if isinstance(m, Factorised) and isinstance(m[0], layer)]
        rows = [check(f"{kind} layers factorised", "> 0", len(fact), len(fact) > 0, "pytorch")]
        if p["energy"] == 0:
            wrong = []
            for _, m in fact:
                full = [m[0].in_features, m[-1].out_features] if kind == "linear" else [m[-1].out_channels, m[0].in_channels]
                expect = (max(1, int(round(p["rank_ratio"] * min(full)))),) if kind == "linear" else tuple(
                    max(1, int(round(p["rank_ratio"] * c))) for c in full)
                inner = (m[0].out_features,) if kind == "linear" else (m[1].out_channels, m[1].in_channels)
                if inner != expect or m.rank != expect:
                    wrong.append((inner, expect))
            rows.append(check("ranks equal the request", "all", f"{len(fact) - len(wrong)}/{len(fact)}", not wrong, "pytorch"))
        if artifact is not None:
            from helpers.deploy.inspection import inspect_tflite

            info = inspect_tflite(artifact)
            # a convolution with one input channel is written as DEPTHWISE_CONV_2D, so both count
            ops = ("FULLY_CONNECTED",) if kind == "linear" else ("CONV_2D", "DEPTHWISE_CONV_2D")
            n_ops = sum(info.ops.get(o, 0) for o in ops)
            n_layers = sum(isinstance(m, layer) for m in after.modules())
            rows.append(check(f"artifact has the factor {'/'.join(ops)} ops", n_layers, n_ops, n_ops == n_layers,
                              "artifact"))
        return rows
    return verify


@register("svd_linear", "low_rank", LOWRANK_PARAMS, "truncated SVD of fully-connected layers")
def _svd():
    def apply(model, p, ctx):
        for name, m in list(_targets(model, "linear", p["min_channels"])):
            _set(model, name, svd_linear(m, p["rank_ratio"], p["energy"] or None))
        return model
    return apply, _verify("linear")


@register("tucker_conv", "low_rank", LOWRANK_PARAMS, "Tucker-2 of kxk convolutions into 1x1, kxk, 1x1 (tensorly)")
def _tucker():
    def apply(model, p, ctx):
        for name, m in list(_targets(model, "conv", p["min_channels"])):
            _set(model, name, tucker2_conv(m, p["rank_ratio"], p["energy"] or None))
        return model
    return apply, _verify("conv")
