"""Quantisation steps: post-training int8 (per channel or per tensor), PT2E QAT, fp16 and dynamic range.

Each declares the artifact's export mode (``Method.export_mode``; ``CompressionPlan.export_spec`` reads it
with the step's parameters); QAT also trains the fake-quantised graph, which it leaves in
``ctx.state["qat_module"]`` for the exporter to convert.
"""

from __future__ import annotations

import torch

from helpers.compress.registry import Param, check, register


def fold_batchnorm(model: torch.nn.Module) -> torch.nn.Module:
    """Fold every BatchNorm2d that directly follows a Conv2d among its parent's children into that conv.

    QAT needs it: litert-torch 0.10's QAT-only conv+BN patterns fail to build against torchao 0.18, so QAT
    runs on BN-folded convolutions with those patterns switched off (see ``qat_quantizer``).
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    model.eval()
    for parent in model.modules():
        names = list(parent._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = parent._modules[a], parent._modules[b]
            if isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d):
                parent._modules[a] = fuse_conv_bn_eval(conv, bn)
                parent._modules[b] = torch.nn.Identity()
    return model


def qat_quantizer(per_channel: bool):
    """The PT2E QAT quantizer with the broken conv+BN patterns off (BN is folded beforehand)."""
    from helpers.deploy.int8_recipe import quantizer

    q = quantizer(per_channel, qat=True)
    q.STATIC_QAT_ONLY_OPS = []
    return q


def _verify_int8(before, after, p, ctx, artifact):
    if artifact is None:
        return [check("full-integer artifact", True, "no artifact", False, "artifact")]
    from helpers.deploy.inspection import inspect_tflite

    info = inspect_tflite(artifact)
    return [check("full-integer artifact", True, info.full_integer, info.full_integer, "artifact"),
            check("int8 input and output", "INT8/INT8", f"{info.input_dtype}/{info.output_dtype}",
                  info.input_dtype == info.output_dtype == "INT8", "artifact")]


@register("ptq", "quantization",
          {"per_channel": Param("bool", True, "per-channel (true) or per-tensor int8 weights"),
           "calibration": Param("int", 100, "training images used to calibrate activation ranges", 1, 10000)},
          "post-training full-integer int8 (Edge TPU compatible)", export_mode="int8")
def _ptq():
    def apply(model, p, ctx):
        return model  # nothing to do before export: export_mode and the step's parameters say how
    return apply, _verify_int8


@register("qat", "quantization",
          {"epochs": Param("float", 0.2, "passes over the training set with fake quantisation", 0.01, 20.0),
           "lr": Param("float", 0.0005, "SGD learning rate (batch 1: keep it small)", 1e-6, 0.1),
           "per_channel": Param("bool", True, "per-channel (true) or per-tensor int8 weights"),
           "calibration": Param("int", 100, "images used to initialise the observers", 1, 10000)},
          "quantisation-aware training with PT2E fake quantisation, then full-integer export", export_mode="int8")
def _qat():
    def apply(model, p, ctx):
        from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e

        from helpers.deploy.int8_recipe import channel_last_program

        quant = qat_quantizer(p["per_channel"])
        program, _ = channel_last_program(fold_batchnorm(model), ctx.input_size, ctx.in_channels)
        prepared = prepare_qat_pt2e(program, quant)
        with torch.no_grad():  # observers first see real data, one image at a time (the graph is batch-1)
            for img in ctx.train_ds.images[:p["calibration"]]:
                prepared(img[None].permute(0, 2, 3, 1))
        # BatchNorm stays in inference form (frozen statistics): the graph runs one image per step, where
        # batch statistics would be meaningless; freezing BN is also the usual late-QAT practice
        opt = torch.optim.SGD(prepared.parameters(), lr=p["lr"], momentum=0.9)
        steps = max(1, int(p["epochs"] * len(ctx.train_ds)))
        torch.manual_seed(ctx.seed)
        order = torch.randperm(len(ctx.train_ds))[:steps]
        for i in order.tolist():  # batch 1: the exported graph is specialised to one image
            x, y = ctx.train_ds.images[i:i + 1], ctx.train_ds.targets[i:i + 1]
            loss = torch.nn.functional.cross_entropy(prepared(x.permute(0, 2, 3, 1)), y)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"QAT loss became {loss.item()}; lower the qat step's lr (now {p['lr']})")
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(prepared.parameters(), 1.0)  # single-image steps are noisy
            opt.step()
        ctx.state["qat_module"] = prepared
        ctx.state["qat_quantizer"] = quant
        return model

    return apply, _verify_int8


def _reference(mode: str):
    def apply(model, p, ctx):
        return model  # the mode is the method's export_mode

    def verify(before, after, p, ctx, artifact):
        if artifact is None:
            return [check(f"{mode} artifact", True, "no artifact", False, "artifact")]
        from helpers.deploy.inspection import inspect_tflite

        info = inspect_tflite(artifact)
        want = "FLOAT16" if mode == "fp16" else "INT8"
        weights = {t["dtype"] for op in info.op_list if op.op in ("CONV_2D", "FULLY_CONNECTED")
                   for t in op.inputs[1:2]} | {t["dtype"] for op in info.op_list if op.op == "DEQUANTIZE"
                                                for t in op.inputs}
        return [check(f"{want} weights", want, sorted(weights), want in weights, "artifact"),
                check("Edge TPU compatible", "no (reference only)", info.full_integer, None, "artifact")]

    return apply, verify


register("fp16", "quantization", {}, "fp16 weights (CPU/GPU reference, not for the Edge TPU)", "fp16")(lambda: _reference("fp16"))
register("dynamic", "quantization", {}, "dynamic-range int8 weights, float activations (reference)", "dynamic")(
    lambda: _reference("dynamic"))
