"""Recovery: fine-tuning after compression, optionally distilling from the uncompressed model."""

from __future__ import annotations

from helpers.compress.registry import Param, check, register
from helpers.networks.train import PRECISIONS


@register("finetune", "recovery",
          {"epochs": Param("float", 0.5, "passes over the training set", 0.0, 50.0),
           "lr": Param("float", 0.01, "peak learning rate (one-cycle)", 1e-5, 1.0),
           "distill": Param("float", 0.0, "weight of knowledge distillation from the uncompressed model", 0.0, 1.0),
           "batch_size": Param("int", 128, "images per step", 1, 4096),
           "precision": Param("choice", "auto", "training arithmetic: auto (bf16 where the CPU makes it faster), fp32 "
                              "or bf16", choices=PRECISIONS)},
          "fine-tune the compressed model to recover accuracy (optionally with knowledge distillation)")
def _finetune():
    def apply(model, p, ctx):
        from helpers.networks.train import TrainConfig, evaluate, train

        if p["epochs"] == 0:
            return model
        val = ctx.val_ds
        before = evaluate(model, val)["accuracy"] if val is not None else None
        cfg = TrainConfig(epochs=p["epochs"], batch_size=p["batch_size"], lr=p["lr"], seed=ctx.seed,
                          distill_alpha=p["distill"], weight_decay=1e-4, precision=p["precision"])
        train(model, ctx.train_ds, cfg, teacher=ctx.teacher if p["distill"] > 0 else None, progress=ctx.progress)
        model.cpu()
        ctx.state.setdefault("finetune", []).append(
            {"val_before": before, "val_after": evaluate(model, val)["accuracy"] if val is not None else None})
        return model

    def verify(before, after, p, ctx, artifact):
        log = (ctx.state.get("finetune") or [{}])[-1]
        if log.get("val_before") is None:
            return [check("validation accuracy recovered", "after >= before", "no validation set", None, "pytorch")]
        return [check("validation accuracy recovered", f">= {log['val_before']:.4f}", round(log["val_after"], 4),
                      log["val_after"] >= log["val_before"] - 0.002, "pytorch")]

    return apply, verify
