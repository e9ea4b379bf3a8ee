"""O6: the one-at-a-time sweep around a default plan, the fidelity gap, and the search space that follows from them.

06 calls these; 08 reads the space through ``search_space.read_space``.
"""

from __future__ import annotations

import pandas as pd

#: The knobs 06 sweeps, in the order of the plan's steps; ``ratio`` is the lever every other knob is judged against.
KNOBS = ("ratio", "stage_slope", "importance", "round_to", "finetune_epochs", "calibration")


def sweep_plan(point: dict, finetune_lr: float) -> dict:
    """The plan of one sweep point: structured pruning, fine-tuning and int8 PTQ with ``point``'s knob values.

    A knob's value may be a range or a choice list (``{low, high}`` / ``{choices}``): the result is then a
    search template. Raises ValueError naming a missing knob.
    """
    missing = [k for k in KNOBS if k not in point]
    if missing:
        raise ValueError(f"sweep point lacks {', '.join(missing)}; give every one of {', '.join(KNOBS)}")
    return {"name": "sweep", "steps": [
        {"method": "structured", "ratio": point["ratio"], "stage_slope": point["stage_slope"],
         "importance": point["importance"], "round_to": point["round_to"]},
        {"method": "finetune", "epochs": point["finetune_epochs"], "lr": finetune_lr, "batch_size": 256},
        {"method": "ptq", "calibration": point["calibration"]}]}


def with_changes(sens: pd.DataFrame) -> pd.DataFrame:
    """Add each row's latency change (%) and accuracy change (fraction) against the '(default)' row."""
    ref = sens[sens.parameter == "(default)"].iloc[0]
    return sens.assign(**{"latency_change_%": 100 * (sens.latency_ms / ref.latency_ms - 1),
                          "accuracy_change": sens.val_accuracy - ref.val_accuracy})


def fidelity_gap(dataset: str, screen: dict, final: dict, screen_epochs: float, final_epochs: float) -> dict:
    """What the long (final) fine-tune adds over the screening one on the default plan: 08's screening slack.

    ``screen`` and ``final`` are plan rows; the slack is in points, never negative.
    """
    return {"dataset": dataset, "screen_epochs": screen_epochs, "screen_val_accuracy": screen["val_accuracy"],
            "final_epochs": final_epochs, "final_val_accuracy": final["val_accuracy"],
            "slack_points": max(0.0, round(100 * float(final["val_accuracy"] - screen["val_accuracy"]), 2)),
            "screen_s": screen["seconds"], "final_s": final["seconds"]}


def search_space(default: dict, effects: pd.DataFrame, ranges: dict, gaps: pd.DataFrame, finetune_lr: float,
                 run_record: str) -> dict:
    """The search-space file's content: the lever's range, each knob's range where 06 chose to optimise it
    (``effects.optimise``), else the default plan's value; the screening fine-tune; the per-dataset final
    fine-tune and screening slack measured in ``gaps``.

    ``ranges`` holds a range or choice list for ``ratio`` and any knob that may be searched. Raises
    ValueError when a knob chosen for the search has no range.
    """
    free = {"ratio"} | {k for k in effects.index if effects.loc[k, "optimise"]}
    lacking = sorted(k for k in free if k not in ranges)
    if lacking:
        raise ValueError(f"search_ranges has no range for {', '.join(lacking)}, which 06 chose to search; add one")
    point = {k: ranges[k] if k in free else default[k] for k in KNOBS}
    return {"steps": sweep_plan(point, finetune_lr)["steps"],
            "screening": {"final_epochs": {ds: float(v) for ds, v in gaps.final_epochs.items()},
                          "slack_points": {ds: float(v) for ds, v in gaps.slack_points.items()}},
            "run_record": run_record}
