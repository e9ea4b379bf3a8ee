"""Unstructured pruning (torch.nn.utils.prune, made permanent) and structured channel pruning (torch-pruning)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.utils.prune as prune
from torch import nn

from helpers.compress.registry import Param, check, prunable_layers, register
from helpers.networks.models import count_macs_params


def make_permanent(model: nn.Module) -> nn.Module:
    """Make every torch.nn.utils.prune reparametrisation permanent (mask folded into the weight)."""
    for m in model.modules():
        for hook in list(m._forward_pre_hooks.values()):
            if isinstance(hook, prune.BasePruningMethod):
                prune.remove(m, hook._tensor_name)
    return model


def snapshot(model: nn.Module) -> nn.Module:
    """A deep copy with pruning masks folded in; the original keeps its masks.

    torch.nn.utils.prune leaves ``weight`` as a non-leaf tensor after a forward pass, which deepcopy
    refuses; it is replaced by a detached copy first (the pre-forward hook recomputes it anyway).
    """
    for m in model.modules():
        if any(isinstance(h, prune.BasePruningMethod) for h in m._forward_pre_hooks.values()):
            for hook in m._forward_pre_hooks.values():
                if isinstance(hook, prune.BasePruningMethod):
                    setattr(m, hook._tensor_name, getattr(m, hook._tensor_name).detach())
    import copy

    return make_permanent(copy.deepcopy(model))


def weight_sparsity(model: nn.Module) -> float:
    """Fraction of exactly-zero weights over all conv and linear weight tensors."""
    ws = [m.weight.detach() for _, m in prunable_layers(model)]
    return float(sum((w == 0).sum().item() for w in ws) / sum(w.numel() for w in ws))


def artifact_sparsity(artifact) -> float:
    """Fraction of zero weights over the CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED weights of a .tflite."""
    from helpers.deploy.inspection import constant_values

    ws = [w for op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") for w in constant_values(artifact, op)]
    return float(sum((w == 0).sum() for w in ws) / max(sum(w.size for w in ws), 1))


@register("unstructured", "pruning",
          {"amount": Param("float", 0.5, "fraction of weights set to zero", 0.0, 0.99),
           "criterion": Param("choice", "l1", "which weights: smallest magnitude (l1) or random", choices=("l1", "random")),
           "scope": Param("choice", "global", "one threshold over all layers, or the same fraction per layer",
                          choices=("global", "layer"))},
          "zero individual weights; the tensors stay dense, so size and latency do not change")
def _unstructured():
    def apply(model, p, ctx):
        layers = [(m, "weight") for _, m in prunable_layers(model)]
        torch.manual_seed(ctx.seed)
        if p["scope"] == "global":
            method = prune.L1Unstructured if p["criterion"] == "l1" else prune.RandomUnstructured
            prune.global_unstructured(layers, pruning_method=method, amount=p["amount"])
        else:
            for m, name in layers:
                (prune.l1_unstructured if p["criterion"] == "l1" else prune.random_unstructured)(m, name, amount=p["amount"])
        # the masks stay attached (weight = weight_orig * mask) so that a later fine-tuning step cannot
        # regrow pruned weights; the plan folds them in (``make_permanent``) before verification and export
        return model

    def verify(before, after, p, ctx, artifact):
        s = weight_sparsity(after)
        rows = [check("weight sparsity (PyTorch)", p["amount"], round(s, 4), abs(s - p["amount"]) <= 0.01, "pytorch")]
        if artifact is not None:
            a = artifact_sparsity(artifact)
            rows.append(check("zero weights survive export", f">= {p['amount'] - 0.01:.2f}", round(a, 4),
                              a >= p["amount"] - 0.01, "artifact"))
            rows.append(check("size or speed benefit", "smaller or faster artifact", "dense kernels, same size",
                              None, "artifact"))
        return rows

    return apply, verify


IMPORTANCES = ("l1", "l2", "bn_scale", "taylor", "lamp", "hessian", "random")


def _importance(name: str):
    import torch_pruning as tp

    return {"l1": lambda: tp.importance.GroupMagnitudeImportance(p=1),
            "l2": lambda: tp.importance.GroupMagnitudeImportance(p=2),
            "bn_scale": lambda: tp.importance.BNScaleImportance(),
            "taylor": lambda: tp.importance.GroupTaylorImportance(),
            "lamp": lambda: tp.importance.LAMPImportance(p=2),
            "hessian": lambda: tp.importance.GroupHessianImportance(),
            "random": lambda: tp.importance.RandomImportance()}[name]()


def stages(model: nn.Module) -> dict[str, list[nn.Module]]:
    """Convolutions grouped by stage (ResNet layer1-4; MobileNetV2 by output resolution) for per-stage ratios."""
    out: dict[str, list[nn.Module]] = {}
    for name, m in prunable_layers(model):
        if not isinstance(m, nn.Conv2d):
            continue
        if name.startswith("layer"):
            key = name.split(".")[0]
        elif name.startswith("features."):
            idx = int(name.split(".")[1])
            key = "stage1" if idx <= 3 else "stage2" if idx <= 6 else "stage3" if idx <= 13 else "stage4"
        else:
            key = "stem"
        out.setdefault(key, []).append(m)
    return out


def slope_ratios(groups: dict, ratio: float, slope: float) -> dict[str, float]:
    """Per-stage ratios tilted by ``slope`` around ``ratio`` (one number the search can tune instead of four).

    Stages are taken in network order, the stem excluded; each ratio is clipped to [0, 0.95].
    """
    keys = [k for k in groups if k != "stem"]
    if not slope or len(keys) < 2:
        return {}
    return {k: float(np.clip(ratio + slope * (-1 + 2 * i / (len(keys) - 1)), 0.0, 0.95)) for i, k in enumerate(keys)}


@register("structured", "structured_pruning",
          {"ratio": Param("float", 0.5, "fraction of channels removed from each prunable layer group", 0.0, 0.95),
           "importance": Param("choice", "l1", "channel importance criterion", choices=IMPORTANCES),
           "global_pruning": Param("bool", False, "rank channels across layers instead of the same ratio per layer"),
           "stage_slope": Param("float", 0.0, "per-stage ratio = ratio + stage_slope x position, position running from "
                                "-1 (first stage) to +1 (last): > 0 prunes the wide late stages more", -0.5, 0.5),
           "stage_ratios": Param("dict", {}, "per-stage ratios overriding `ratio` (stage1..stage4 or layer1..layer4)"),
           "round_to": Param("int", 1, "keep channel counts a multiple of this (e.g. 8 for accelerators)", 1, 64),
           "keep_stem": Param("bool", True, "never prune the first convolution's output channels"),
           "keep_classifier": Param("bool", True, "never prune the classifier (its outputs are the classes)")},
          "remove whole channels (DepGraph keeps coupled layers consistent): smaller, faster dense layers")
def _structured():
    def apply(model, p, ctx):
        import torch_pruning as tp

        model.eval()
        example = ctx.example(8 if p["importance"] in ("taylor", "hessian") else 1)
        layers = [m for _, m in prunable_layers(model)]
        ignored = [m for m in layers if isinstance(m, nn.Linear)] if p["keep_classifier"] else []
        if p["keep_classifier"] and layers and isinstance(layers[-1], nn.Conv2d):  # a conv classifier (SqueezeNet)
            ignored.append(layers[-1])
        convs = [m for m in layers if isinstance(m, nn.Conv2d)]
        if p["keep_stem"]:
            ignored.append(convs[0])
        groups = stages(model)
        unknown = sorted(set(p["stage_ratios"]) - set(groups))
        if unknown:
            raise ValueError(f"stage_ratios: unknown stage {unknown[0]!r}; this model has {', '.join(groups)}")
        per_stage = {**slope_ratios(groups, p["ratio"], p["stage_slope"]), **p["stage_ratios"]}  # explicit ones win
        ratio_dict = {m: float(r) for key, r in per_stage.items() for m in groups[key]}
        imp = _importance(p["importance"])
        pruner = tp.pruner.MetaPruner(model, example, importance=imp, pruning_ratio=p["ratio"],
                                      pruning_ratio_dict=ratio_dict or None, global_pruning=p["global_pruning"],
                                      round_to=p["round_to"] if p["round_to"] > 1 else None, ignored_layers=ignored)
        if p["importance"] in ("taylor", "hessian"):
            targets = ctx.train_ds.targets[:len(example)] if ctx.train_ds is not None else torch.zeros(len(example), dtype=torch.long)
            model.zero_grad()
            if p["importance"] == "hessian":
                imp.zero_grad()
                for i in range(len(example)):
                    loss = nn.functional.cross_entropy(model(example[i:i + 1]), targets[i:i + 1])
                    loss.backward()
                    imp.accumulate_grad(model)
            else:
                nn.functional.cross_entropy(model(example), targets).backward()
        pruner.step()
        model.zero_grad()
        return model

    def verify(before, after, p, ctx, artifact):
        size, ch = ctx.input_size, ctx.in_channels
        macs0, params0 = count_macs_params(before, size, ch)
        macs1, params1 = count_macs_params(after, size, ch)
        c0 = sum(m.out_channels for _, m in prunable_layers(before) if isinstance(m, nn.Conv2d))
        c1 = sum(m.out_channels for _, m in prunable_layers(after) if isinstance(m, nn.Conv2d))
        removed = 1 - c1 / c0
        rows = [check("channels removed (conv outputs)", f"> 0, about {p['ratio']:.2f} of prunable", round(removed, 4),
                      c1 < c0 or p["ratio"] == 0, "pytorch"),
                check("parameters fall", f"< {params0}", params1, params1 < params0 or p["ratio"] == 0, "pytorch"),
                check("MACs fall", f"< {macs0}", macs1, macs1 < macs0 or p["ratio"] == 0, "pytorch")]
        if p["round_to"] > 1:
            layers = [m for _, m in prunable_layers(after)]
            kept = layers[-1:] if p["keep_classifier"] else []  # a conv classifier keeps one channel per class
            bad = [m.out_channels for m in layers
                   if isinstance(m, nn.Conv2d) and m.out_channels % p["round_to"] and m.groups == 1 and m not in kept]
            rows.append(check(f"channels multiple of {p['round_to']}", 0, len(bad), not bad, "pytorch"))
        if artifact is not None:
            from helpers.deploy.inspection import inspect_tflite

            info = inspect_tflite(artifact)
            lite = sorted(op.outputs[0]["shape"][-1] for op in info.op_list if op.op in ("CONV_2D", "DEPTHWISE_CONV_2D"))
            torch_ch = sorted(m.out_channels for _, m in prunable_layers(after) if isinstance(m, nn.Conv2d))
            rows.append(check("artifact conv channels equal the pruned model's", sum(torch_ch), sum(lite),
                              lite == torch_ch, "artifact"))
        return rows

    return apply, verify
