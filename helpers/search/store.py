"""Where trials live: the JSON-lines trial log (append with fsync, replay, corrupt lines skipped), the stored
reference point of a search, and ``StudyLayout``, the one owner of every file name of a study folder.

Nothing else builds or parses a log or study file name (Optuna keeps storage apart from studies and trials the
same way): the search loop is given paths, the study asks its layout, analyses and figures read through it.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Callable

import pandas as pd

from helpers.search.objective import SearchError


def _plain(v):
    return v.item() if hasattr(v, "item") else v


_NUMBERS = ("accuracy", "latency_ms", "latency_iqr_ms", "objective", "seconds")
_COUNTS = ("trial", "val_n")


@dataclass
class TrialRecord:
    """One logged trial, typed: what every search, study and table log line holds (other fields in ``extra``).

    ``accuracy`` is a fraction of ``val_n`` validation images (``correct`` gives the count the bar is compared
    with), ``latency_ms`` the paired latency and ``latency_iqr_ms`` its spread, ``cost`` seconds by phase,
    ``run_record`` the id of the record it ran under, ``artifact`` a path relative to the repository.
    :meth:`from_row` refuses a line whose fields have the wrong types (``read_log`` then skips it as corrupt).
    """

    trial: int
    values: dict
    status: str | None = None  # "ok" or "failed" (network stores hold outcomes without one)
    accuracy: float | None = None
    val_n: int | None = None
    latency_ms: float | None = None
    latency_iqr_ms: float | None = None
    feasible: bool | None = None
    objective: float | None = None
    seconds: float | None = None
    cost: dict | None = None
    run_record: str | None = None
    artifact: str | None = None
    network: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def correct(self) -> int | None:
        """Correct validation images (None when the trial has no accuracy or image count)."""
        from helpers.core.bars import correct_count

        return None if self.accuracy is None or not self.val_n else correct_count(self.accuracy, self.val_n)

    @classmethod
    def from_row(cls, row: dict) -> "TrialRecord":
        if not isinstance(row, dict) or "trial" not in row or "values" not in row:
            raise ValueError("not a trial record")
        for k in _COUNTS:
            if row.get(k) is not None and (isinstance(row[k], bool) or not isinstance(row[k], int)):
                raise ValueError(f"field {k!r} is {row[k]!r}, not a whole number")
        for k in _NUMBERS:
            if row.get(k) is not None and (isinstance(row[k], bool) or not isinstance(row[k], (int, float))):
                raise ValueError(f"field {k!r} is {row[k]!r}, not a number")
        if not isinstance(row["values"], dict):
            raise ValueError(f"field 'values' is {row['values']!r}, not a mapping")
        names = {f.name for f in fields(cls)} - {"extra"}
        return cls(**{k: v for k, v in row.items() if k in names},
                   extra={k: v for k, v in row.items() if k not in names})

    def to_row(self) -> dict:
        """The log line's fields (``extra`` merged back; fields never set left out)."""
        row = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        return {**{k: v for k, v in row.items() if v is not None or k in ("trial", "values")}, **self.extra}


def read_records(path: str | Path) -> list[TrialRecord]:
    """A log's finished trials, typed (:class:`TrialRecord`); corrupt lines skipped as by :func:`read_log`."""
    return [TrialRecord.from_row(r) for r in read_log(path)]


def read_log(path: str | Path, trials_only: bool = True) -> list[dict]:
    """Finished trials from a JSON-lines log; a corrupt line is skipped with a warning naming it. With
    ``trials_only=False`` any JSON object is a row (logs of other records, such as re-timed latencies)."""
    path = Path(path)
    if not path.exists():
        return []
    trials = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError("not a JSON object")
            if trials_only:
                TrialRecord.from_row(row)  # the types every reader relies on, checked once here
            trials.append(row)
        except (json.JSONDecodeError, ValueError) as exc:
            warnings.warn(f"trial log {path}, line {n}: skipped a corrupt line ({exc}); the other lines are kept",
                          stacklevel=2)
    return trials


def append_log(path: str | Path, row: dict) -> None:
    """Append one trial as a JSON line and flush it to disk before returning."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(row, default=_plain)
    with open(path, "a+b") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell():  # a line cut short by a kill is closed off so the next record starts cleanly
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                fh.write(b"\n")
        fh.write(line.encode() + b"\n")
        fh.flush()
        os.fsync(fh.fileno())


def check_log_path(log_path: Path) -> None:
    """The trial log can be created or appended to; SearchError names the path otherwise (before any work)."""
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "a"):
            pass
    except OSError as exc:
        raise SearchError(f"trial log {log_path} cannot be written ({exc.strerror or exc}); set 'log' to a writable "
                          "path") from None


def stored_reference(path: str | Path, measure: Callable[[], dict], rebuild: Callable[[], dict] | None = None) -> dict:
    """The search's reference point, measured once and kept beside its logs, so a resumed search keeps its units.

    Trials are timed as a ratio to the plain int8 artifact times its latency; re-measuring that latency at
    every restart would put the trials of each segment in other units. The first call runs ``measure()``
    (e.g. ``references.reference_point``) and writes the JSON file atomically, with the artifact's sha256;
    later calls read it.

    When the stored artifact is gone (a fresh clone: runs/ is not committed), ``rebuild()`` makes the baseline's
    plain int8 artifact again on this machine (``references.remade_reference``: {artifact, int8_val_accuracy,
    fp32_val_accuracy}). The stored latency stands when the remade artifact is the same network: the same sha256
    where one was stored, else the same fp32 and int8 validation accuracy as stored (exactly: every image scored
    alike). A remade artifact at another path (the code that keys its folder changed) is then recorded in the file
    (``remade``: old and new path, what was checked). Anything else is refused in one sentence (SearchError).
    """
    from helpers.core.io import write_json
    from helpers.core.paths import portable, resolve

    path = Path(path)
    if not path.exists():
        ref = measure()
        artifact = (ref.get("latency_reference") or [None])[0]
        if artifact and resolve(artifact).exists():
            ref = {**ref, "int8_sha256": _sha256(resolve(artifact))}
        write_json(path, ref)
        return json.loads(path.read_text())
    ref = json.loads(path.read_text())
    artifact = (ref.get("latency_reference") or [None])[0]
    if not artifact or resolve(artifact).exists():
        return ref
    start_over = f"run the search where it was made, or delete {path} and the search's logs to start the search over"
    if rebuild is None:
        raise SearchError(f"the reference artifact {artifact} that {path} was measured on is gone; {start_over}")
    made = rebuild()
    new = portable(made["artifact"])
    same, checked = same_network(ref, new, made)
    if not same:
        raise SearchError(f"the reference artifact {artifact} that {path} was measured on is gone and the one made "
                          f"again here ({new}) is not the same network (not {checked}); {start_over}")
    if new != artifact:
        remade = {"was": artifact, "now": new, "checked": checked, "code": made.get("code")}
        ref = {**ref, "latency_reference": [new, ref["latency_reference"][1]], "int8_artifact": new,
               "remade": [*ref.get("remade", []), remade]}
        write_json(path, ref)
    return ref


def same_network(ref: dict, artifact: str | Path, made: dict) -> tuple[bool, str]:
    """Is ``artifact`` (with ``made``'s fp32 and int8 validation accuracies) the plain int8 network a stored reference
    was measured on? The same sha256 where one was stored, else exactly the same accuracies; and what was checked."""
    from helpers.core.paths import resolve

    if ref.get("int8_sha256"):
        return _sha256(resolve(artifact)) == ref["int8_sha256"], "the same sha256"
    keys = ("fp32_val_accuracy", "int8_val_accuracy")
    return (all(k in ref and float(made[k]) == float(ref[k]) for k in keys),
            "the same fp32 and int8 validation accuracy as stored ("
            + ", ".join(f"{float(ref.get(k, float('nan'))):.6g}" for k in keys) + ")")


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def default_log(config_path: str | Path) -> Path:
    """A search config's trial log when the config names none: beside it, with the same stem."""
    return Path(config_path).with_suffix(".jsonl")


def search_files(log_path: str | Path, final_epochs=None) -> dict:
    """The files of a single search beside its log: its reference, the folder of its command records (the run
    record its plans name) and, with a long fine-tune, its final-run log."""
    log_path = Path(log_path)
    return {"reference": log_path.with_name(f"{log_path.stem}.reference.json"),
            "records": log_path.with_name(f"{log_path.stem}.run_records"),
            "final": log_path.with_name(f"{log_path.stem}-final{final_epochs}.jsonl") if final_epochs else None}


def network_stores(stem: str | Path, final_epochs=None) -> tuple[Path, Path | None]:
    """(screening store, final store) of the network-keyed outcomes that share the stem ``stem``."""
    stem = Path(stem)
    return (stem.with_name(f"{stem.name}-screen.jsonl"),
            stem.with_name(f"{stem.name}-final{final_epochs}.jsonl") if final_epochs else None)


_SEARCH_LOG = re.compile(r"^(?P<dataset>.+)-s(?P<seed>\d+)-(?P<method>[a-z]+)(?P<final>-final)?\.jsonl$")


@dataclass(frozen=True)
class _ResultsFolder:
    """What a study folder and a table folder share: the folder, its run record and earlier ones, its figures."""

    folder: Path

    def __post_init__(self):
        object.__setattr__(self, "folder", Path(self.folder))

    @property
    def run_record(self) -> Path:
        return self.folder / "run_record.json"

    def earlier_record(self, record_id: str) -> Path:
        return self.folder / "run_records" / f"{record_id}.json"

    def current_record(self, profile: str) -> dict:
        """This run's record of ``profile`` (written as ``run_record.json``); the record it replaces there is kept
        as ``run_records/<id>.json`` first, so a folder measured in several runs (a resume under other code, a
        table's live check) names every run record and every row's record stays on disk."""
        from helpers.core.io import write_json
        from helpers.records.provenance import current_record

        before = json.loads(self.run_record.read_text()) if self.run_record.exists() else None
        record = current_record(profile)
        if before and before.get("id") != record["id"]:
            write_json(self.earlier_record(before["id"]), before)
        return record

    @property
    def figures(self) -> Path:
        return self.folder / "figures"

    @classmethod
    def committed(cls, root: str | Path) -> list:
        """Every folder of this kind under ``root`` (results/study/<name>/<machine>/, those holding its ``meta``
        file), in path order: the one walk the README, 08 and the book share."""
        return [cls(p) for p in sorted(Path(root).glob("*/*")) if cls(p).meta.exists()]


@dataclass(frozen=True)
class StudyLayout(_ResultsFolder):
    """Every file of a study folder (results/study/<name>/<machine>/), named here and nowhere else."""

    # ---- per search ------------------------------------------------------------------------------------------------
    @staticmethod
    def tag(dataset: str, seed: int, method: str) -> str:
        return f"{dataset}-s{seed}-{method}"

    def log(self, dataset: str, seed: int, method: str, final: bool = False) -> Path:
        """A search's screening log, or with ``final`` its long-fine-tune log."""
        return self.folder / f"{self.tag(dataset, seed, method)}{'-final' if final else ''}.jsonl"

    def logs(self, dataset: str | None = None, method: str | None = None, final: bool | None = None) -> list[dict]:
        """Every search log in the folder as {dataset, seed, method, final, path}, filtered by the given fields,
        in file-name order."""
        out = []
        for p in sorted(self.folder.glob("*.jsonl")):
            m = _SEARCH_LOG.match(p.name)
            if m is None or "-networks-" in p.name:
                continue
            row = {"dataset": m["dataset"], "seed": int(m["seed"]), "method": m["method"], "final": bool(m["final"]),
                   "path": p}
            if ((dataset is None or row["dataset"] == dataset) and (method is None or row["method"] == method)
                    and (final is None or row["final"] == final)):
                out.append(row)
        return out

    def has_trials(self) -> bool:
        return any(self.folder.glob("*.jsonl"))

    # ---- per dataset -----------------------------------------------------------------------------------------------
    def reference(self, dataset: str) -> Path:
        """A dataset's reference figures (plain int8 latency, fp32 validation accuracy, the artifacts)."""
        return self.folder / f"{dataset}-reference.json"

    def fp32_test(self, dataset: str) -> Path:
        return self.folder / f"{dataset}-fp32-test.json"

    def networks(self, dataset: str) -> Path:
        """The stem of a dataset's network-keyed stores (see :func:`network_stores`)."""
        return self.folder / f"{dataset}-networks"

    def slack(self, dataset: str, seed: int) -> Path:
        """A seed's calibrated screening slack, fixed once."""
        return self.folder / f"{dataset}-s{seed}.slack.json"

    # ---- the study -------------------------------------------------------------------------------------------------
    @property
    def meta(self) -> Path:
        return self.folder / "study.json"

    @property
    def chosen(self) -> Path:
        return self.folder / "chosen.csv"


    @property
    def workers(self) -> Path:
        return self.folder / "workers.json"



@dataclass(frozen=True)
class TableLayout(_ResultsFolder):
    """Every file of a tabular benchmark's folder (results/study/<name>/<machine>/), named here and nowhere else."""

    @property
    def meta(self) -> Path:
        return self.folder / "table.json"

    def reference(self, dataset: str) -> Path:
        """A dataset's reference: plain int8 latency, the baseline's and the budget-matched network's validation counts."""
        return self.folder / f"{dataset}-reference.json"

    def rows(self, dataset: str) -> Path:
        """A dataset's measured networks (JSON lines, one per network and kind)."""
        return self.folder / f"{dataset}-table.jsonl"

    def latencies(self, dataset: str) -> Path:
        """Every network of the space re-timed on this folder's machine (``table.retime``): the analysis's latencies."""
        return self.folder / f"{dataset}-latency.jsonl"

    def has_rows(self) -> bool:
        return any(self.folder.glob("*-table.jsonl"))

    def replay(self, dataset: str) -> Path:
        """The optimisers' replayed trajectories on a dataset's table (regret by trial, per optimiser and seed)."""
        return self.folder / f"{dataset}-replay.csv"

    def verdicts(self, dataset: str) -> Path:
        """The pre-registered comparisons of the replays on a dataset's table."""
        return self.folder / f"{dataset}-verdicts.csv"

    def redraws(self, dataset: str) -> Path:
        """The registered comparisons with the validation counts redrawn (``replay --redraw``; descriptive)."""
        return self.folder / f"{dataset}-redraw.csv"

    def live_store(self, dataset: str) -> Path:
        """The networks that live (not replayed) searches on the table's space measured, each once."""
        return self.folder / f"{dataset}-live.jsonl"

    def live_check(self, dataset: str) -> Path:
        """Live against replayed searches of the same seeds: their chosen networks and latencies."""
        return self.folder / f"{dataset}-live-check.csv"



def study_trials(folder: str | Path) -> pd.DataFrame:
    """Every trial of a study folder as one data frame (what the analyses and figures read instead of the folder):
    the log's fields plus ``dataset``, ``seed``, ``method``, ``final``, ``order`` (position in its log) and
    ``reference_ms`` (the dataset's plain int8 latency, NaN when its reference file is missing)."""
    layout, rows = StudyLayout(folder), []
    refs = {}
    for x in layout.logs():
        ds = x["dataset"]
        if ds not in refs:
            path = layout.reference(ds)
            refs[ds] = json.loads(path.read_text())["int8_latency_ms"] if path.exists() else float("nan")
        for i, r in enumerate(read_log(x["path"])):
            rows.append({**r, "dataset": ds, "seed": x["seed"], "method": x["method"], "final": x["final"],
                         "order": i, "reference_ms": refs[ds]})
    cols = ["dataset", "seed", "method", "final", "order", "trial", "status", "accuracy", "latency_ms", "feasible",
            "objective", "screen_accuracy", "reference_ms"]
    df = pd.DataFrame(rows)
    for c in cols:
        if c not in df:
            df[c] = pd.Series(dtype=float)
    return df


def known_test(folder: Path, ds: str, seed: int, method: str) -> dict:
    """{chosen values (JSON): test accuracy} of a search already in chosen.csv: a resumed study replays a finished
    search and keeps the test score it had (its artifact may be gone with a fresh clone's runs/)."""
    path = StudyLayout(folder).chosen
    if not path.exists():
        return {}
    t = pd.read_csv(path)
    t = t[(t.dataset == ds) & (t.seed == seed) & (t.method == method) & t.chosen.notna() & t.test_accuracy.notna()]
    return dict(zip(t.chosen, t.test_accuracy))


def write_chosen(folder: Path, rows: list[dict]) -> None:
    """Merge a study's chosen rows into chosen.csv (one row per dataset, seed and method; the newest wins), atomically."""
    from helpers.core.io import atomic_path

    chosen = StudyLayout(folder).chosen
    old = pd.read_csv(chosen) if chosen.exists() else pd.DataFrame()
    new = pd.DataFrame(rows).drop(columns=["summary"])
    both = pd.concat([old, new]).drop_duplicates(["dataset", "seed", "method"], keep="last") if len(old) else new
    with atomic_path(chosen) as tmp:
        both.sort_values(["dataset", "seed", "method"]).to_csv(tmp, index=False)
