"""The report of one ``fit`` (``fit.json`` -> ``report.md`` and ``front.png`` beside it): the recommendation in one
sentence, the chosen network's test count with its interval and latency with its spread, the controls at the same
budget, the screening round and what it promoted, every candidate by axis, and the Edge TPU placement."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["recommendation", "write_fit_report"]


def _arch(values: dict) -> str:
    if values.get("kind") == "prune":  # the pruner takes the mean width; depth and stem stride stay the given ones
        widths = [float(values[k]) for k in values if k.startswith("width")]
        return f"the given architecture, keep {sum(widths) / max(1, len(widths)):.2f} of each prunable group"
    widths = [f"{values[k]:.2f}" for k in sorted(values) if k.startswith("width")]
    parts = [f"widths {'/'.join(widths)}"] if widths else []
    if "depth" in values:
        parts.append(f"depth x{values['depth']}")
    if "stem_stride" in values:
        parts.append(f"stem stride {values['stem_stride']}")
    return ", ".join(parts)


def _how(values: dict) -> str:
    kind = "pruned given network, fine-tuned" if values.get("kind") == "prune" else "from scratch"
    kd = float(values.get("distill", 0))
    teach = f", distilled (weight {kd:.2f}, T {values.get('temperature')})" if kd > 0 else ", no teacher"
    return f"{kind}{teach}, input x{values.get('resolution', 1.0)}"


def recommendation(fit: dict) -> str:
    """The one-sentence answer."""
    ref, chosen = fit["reference"], fit["chosen"]
    if chosen is None:
        return (f"No candidate cleared the bar ({fit['config']['bar']} points below the given network's int8 "
                f"{ref['val_correct']} of {ref['val_n']} on validation): deploy the given network's plain int8, or "
                "give a larger --budget or --epochs.")
    return (f"Deploy model.tflite: {_how(chosen['values'])} ({_arch(chosen['values'])}), "
            f"{chosen['speedup_vs_given_int8']:.2f}x faster than the given network's plain int8 on this machine, "
            f"{chosen['val_correct']} of {chosen['val_n']} right on validation (bar: {fit['bar_correct'] * 100:.2f}%) "
            f"and {chosen['test_correct']} of {chosen['test_n']} on test.")


def _row(r: dict) -> str:
    if r.get("status") != "ok":
        return f"| {r.get('trial', r.get('label', ''))} | {_how(r['values'])} | {_arch(r['values'])} | failed: " \
               f"{r.get('reason', '')[:80]} | | | |"
    return (f"| {r.get('trial', r.get('label', ''))} | {_how(r['values'])} | {_arch(r['values'])} | "
            f"{r['val_correct']}/{r['val_n']} | {r['latency_ms']:.3f} | {1 / r['ratio_to_given_int8']:.2f}x | "
            f"{'yes' if r['feasible'] else 'no'} |")


HEAD = ["| candidate | how | architecture | validation | ms here | vs given int8 | clears |",
        "|---|---|---|---|---|---|---|"]


def write_fit_report(fit_json: str | Path) -> Path:
    """Write report.md and front.png beside ``fit_json``; returns the markdown's path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from helpers.core.io import atomic_path
    from helpers.core.identity import machine

    fit_json = Path(fit_json)
    fit = json.loads(fit_json.read_text())
    cfg, ref, chosen = fit["config"], fit["reference"], fit["chosen"]
    out = fit_json.parent
    lines = [f"# fit: {cfg['model']} on {cfg['data']}", "", recommendation(fit), "",
             f"Machine: {machine()['id']}; target {cfg['target']}. Given network's plain int8: {ref['latency_ms']:.3f} "
             f"ms, {ref['val_correct']} of {ref['val_n']} on validation, {fit['given_test']['correct']} of "
             f"{fit['given_test']['n']} on test. Bar: {cfg['bar']} points below it, compared as counts.", ""]
    if chosen is not None:
        lo, hi = chosen["test_interval"]
        lines += ["## The chosen network", "",
                  f"- {_how(chosen['values'])}; {_arch(chosen['values'])}; {chosen['macs'] / 1e6:.2f} MMACs, "
                  f"{chosen['params'] / 1e6:.3f} M parameters, input {chosen['input_size']} px.",
                  f"- Test (once, after selection on validation): {chosen['test_correct']} of {chosen['test_n']} "
                  f"({100 * chosen['test_correct'] / chosen['test_n']:.2f}%, 95% Wilson interval "
                  f"{100 * lo:.2f}-{100 * hi:.2f}%).",
                  f"- Latency here: {chosen['latency_ms']:.3f} ms, {chosen['ratio_to_given_int8']:.3f} x the given "
                  f"int8 (IQR of the paired ratio {chosen['ratio_iqr']:.3f}{', noisy' if chosen['noisy'] else ''}).",
                  ]
        if chosen.get("edgetpu"):
            lines.append(f"- Edge TPU: {chosen['latency_source']}; placement {json.dumps(chosen['edgetpu'])}.")
        lines.append("")
    lines += ["## Controls and promoted candidates (full budget: "
              f"{fit['full_epochs']} passes)", "",
              "The controls are uniform widths of the given network's family trained from scratch without a teacher, "
              "at the same passes; every candidate here is scored on validation.", "", *HEAD,
              *[_row({**r, "trial": r["label"]}) for r in fit["full"]], ""]
    screened = fit["screened"]
    kinds = sorted({(r["values"]["kind"], float(r["values"].get("distill", 0)) > 0,
                     float(r["values"].get("resolution", 1)) < 1) for r in screened})
    lines += [f"## Screening round ({len(screened)} candidates at {fit['screen_epochs']:.3g} passes; successive "
              f"halving, eta {fit['eta']}: the best {len(fit['promoted'])} promoted: trials "
              f"{', '.join(map(str, fit['promoted']))})", "",
              "Axes seen: " + "; ".join(f"{k}{' + distillation' if d else ''}{' + lower resolution' if r else ''}"
                                        for k, d, r in kinds) + ".", "", *HEAD,
              *[_row(r) for r in screened], "",
              f"Teacher forward passes: {fit['teacher_passes']:.3g} passes over the training subset "
              "(beside the training budget).", ""]
    ok = [r for r in screened + fit["full"] if r.get("status") == "ok"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for stage, marker in (("screen", "o"), ("full", "s")):
        pts = [r for r in ok if ("stage" in r) == (stage == "full")]
        for kind, color in (("scratch", "tab:blue"), ("prune", "tab:orange")):
            sel = [r for r in pts if r["values"]["kind"] == kind]
            ax.scatter([r["latency_ms"] for r in sel], [100 * r["accuracy"] for r in sel], c=color, marker=marker,
                       label=f"{kind} ({stage})", alpha=0.8)
    ax.axhline(100 * fit["bar_correct"], color="grey", ls="--", label="bar")
    ax.axvline(ref["latency_ms"], color="grey", ls=":", label="given int8")
    ax.set(xlabel=f"latency here (ms, {machine()['id']})", ylabel="int8 validation accuracy (%)",
           title=f"fit: {cfg['model']} on {cfg['data']}")
    ax.legend(fontsize=7)
    with atomic_path(out / "front.png") as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    lines += ["![candidates](front.png)", ""]
    path = out / "report.md"
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines))
    return path
