"""Controls carried to another machine: accuracy from the machine that trained them, latency from this one.

Accuracy is a property of a network's trained weights, latency of its graph and the machine (``retime``). A
machine that has re-timed another machine's controls (``python -m helpers retime --scope controls``) may use their
accuracy only where it is shown to be portable: ``python -m helpers controls --stage portable``
(``controls.check_portable``) retrains one control here with the same recipe (the same checkpoint key, so the same
code, data, seed and training precision), exports it with the canonical int8 recipe and compares its validation and
test counts, and its per-image test correctness, with the row and predictions committed by the machine that trained
it. The check is written to
``results/retime/<machine>/portable-<profile>.json``.

:func:`ported_controls` then joins the two: the trained machine's rows (accuracy, counts, per-image correctness)
with this machine's re-timed speed-ups over plain int8 (``speedup_vs_int8`` and its IQR, ``noisy``); every row
names both machines (``accuracy_machine``, ``latency_machine``). Without a passing check there is no join, so no
report pairs one machine's accuracy with another's latency unchecked, nor two machines' latencies.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from helpers.core import paths

def check_path(profile: str, machine_id: str | None = None) -> Path:
    """``results/retime/<machine>/portable-<profile>.json``: this machine's portability check of ``profile``."""
    from helpers.core.identity import machine

    return paths.retime_dir(machine_id or machine()["id"]) / f"portable-{profile}.json"


def _retimed(profile: str, machine_id: str) -> dict:
    """{(source, key): re-timed row} of this machine's timed controls of ``profile`` (status ok)."""
    from helpers.search.store import read_log

    prefix = f"results/{profile}/"
    log = paths.retime_dir(machine_id) / "latency.jsonl"
    return {(r["source"], r["key"]): r for r in read_log(log, trials_only=False)
            if r.get("scope") == "controls" and r.get("status") == "ok" and r["source"].startswith(prefix)}


def source_of(profile: str, machine_id: str) -> str:
    """The one committed controls table of ``profile`` whose rows this machine re-timed; ValueError in one sentence
    when there is none or more than one."""
    sources = sorted({src for src, _ in _retimed(profile, machine_id)})
    if not sources:
        raise ValueError(f"no controls of profile {profile!r} are re-timed on this machine ({machine_id}): run "
                         "`python -m helpers retime --scope controls` first")
    if len(sources) > 1:
        raise ValueError(f"this machine ({machine_id}) re-timed the controls of {len(sources)} machines "
                         f"({', '.join(sources)}); keep the re-timed rows of one in results/retime/{machine_id}/")
    return sources[0]


def check_sentence(check: dict) -> str:
    """One sentence on a portability check: the counts here and there, and whether the accuracy carries over."""
    h, t = check["here"], check["there"]
    agree = (f"; {check['test_images_agree']:,} of {h['test_n']:,} test images answered alike"
             if check.get("test_images_agree") is not None else "")
    verdict = ("the same counts: its accuracy carries over" if check["portable"]
               else "different counts: accuracy is not portable, so no report reuses it")
    return (f"{check['key']} retrained on {check['machine']}: validation {h['val_correct']:,} of {h['val_n']:,} "
            f"(there {t['val_correct']:,}), test {h['test_correct']:,} of {h['test_n']:,} (there "
            f"{t['test_correct']:,}) against {check['accuracy_machine']}{agree}: {verdict}")


def load_check(profile: str, machine_id: str | None = None) -> dict | None:
    """This machine's (or ``machine_id``'s) portability check of ``profile``, or None."""
    path = check_path(profile, machine_id)
    return json.loads(path.read_text()) if path.exists() else None


def ported_controls(profile: str, machine_id: str | None = None) -> pd.DataFrame | None:
    """Another machine's controls of ``profile`` with this machine's re-timed latencies, when a check here showed
    their accuracy portable (None otherwise); rows not re-timed here are left out."""
    from helpers.core.identity import machine

    here = machine_id or machine()["id"]
    check = load_check(profile, here)
    if not check or not check["portable"]:
        return None
    timed = _retimed(profile, here)
    table = pd.read_csv(paths.resolve(check["source"]), dtype={"run_record": str})
    keep = [(check["source"], k) in timed for k in table.key]
    table = table[keep].reset_index(drop=True)
    rows = [timed[(check["source"], k)] for k in table.key]
    return table.assign(speedup_vs_int8=[r["speedup_vs_int8"] for r in rows],
                        speedup_iqr=[r["ratio_iqr"] / r["ratio"] ** 2 for r in rows],
                        ratio_to_int8=[r["ratio"] for r in rows], noisy=[bool(r["noisy"]) for r in rows],
                        accuracy_machine=check["accuracy_machine"], latency_machine=here)


def origin(controls: pd.DataFrame, machine_id: str) -> str:
    """Where a controls table's figures come from: 'measured on M' or 'trained on A (accuracy shown portable), timed
    on M'."""
    if "accuracy_machine" in controls and len(controls):
        return (f"trained on {controls.accuracy_machine.iloc[0]} (accuracy shown portable by a control retrained "
                f"here) and re-timed on {controls.latency_machine.iloc[0]}")
    return f"measured on {machine_id}"
