"""The Papermill chain: run notebooks/NN_*.ipynb in order with the parameters of params/<profile>.yaml."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import yaml

from helpers import paths

PROFILES = ("smoke", "default", "full")


class ChainError(RuntimeError):
    """A notebook of the chain failed or its parameters are malformed."""


#: Profile sections that belong to a command rather than a notebook (each checks its own section whole).
OTHER_SECTIONS = ("controls",)


def notebooks() -> dict[str, Path]:
    """The chain's notebooks by two-digit prefix, in order."""
    return {p.name[:2]: p for p in sorted(paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))}


def load_profile(profile: str, params_dir: Path | None = None) -> dict:
    """Parameters of ``profile``: a mapping with an optional ``common`` section and one per notebook prefix."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    path = (params_dir or paths.PARAMS) / f"{profile}.yaml"
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError:
        raise ChainError(f"params file {path} is missing; create it with a 'common' section and one per notebook") from None
    except yaml.YAMLError as exc:
        from helpers.io import yaml_problem

        raise ChainError(f"params file {path} is not valid YAML ({yaml_problem(exc)}); fix the syntax there") from None
    if not isinstance(data, dict):
        raise ChainError(f"params file {path} must be a mapping of sections, not {type(data).__name__}")
    for section, values in data.items():
        if not isinstance(values, dict):
            raise ChainError(f"params file {path}: section {section!r} must be a mapping of name: value")
    return data


def parameters_for(prefix: str, notebook: Path, profile_params: dict, profile: str) -> dict:
    """Merge ``common`` and the notebook's section, keeping names the notebook declares; unknown names are errors."""
    import papermill as pm

    declared = set(pm.inspect_notebook(str(notebook)))
    section = {str(k): v for k, v in (profile_params.get(prefix) or profile_params.get(int(prefix)) or {}).items()}
    unknown = sorted(set(section) - declared)
    if unknown:
        raise ChainError(f"params for notebook {notebook.name}: unknown name(s) {', '.join(unknown)}; "
                         f"the notebook declares {', '.join(sorted(declared))}")
    common = {k: v for k, v in (profile_params.get("common") or {}).items() if k in declared}
    return {**common, **section, **({"profile": profile} if "profile" in declared else {})}


def effective_parameters(prefix: str, profile_params: dict, profile: str) -> dict:
    """What notebook ``prefix`` runs with under a profile: its declared defaults, then ``common``, then its section."""
    nb = notebooks()[prefix]
    return {**_defaults(nb), **parameters_for(prefix, nb, profile_params, profile)}


#: Parameters that count things: a positive integer, or None where the notebook means "all".
COUNTS = ("finetune_images", "val_images", "test_images", "budget", "n_initial", "final_runs")


def _kind(value) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return {str: "a string", list: "a list", dict: "a mapping"}.get(type(value), type(value).__name__)


def _defaults(notebook: Path) -> dict:
    import ast

    import papermill as pm

    out = {}
    for name, p in pm.inspect_notebook(str(notebook)).items():
        try:
            out[name] = ast.literal_eval(p["default"])
        except (ValueError, SyntaxError):
            out[name] = None  # a default that is not a literal: its type is not checked
    return out


def check_profile(profile_params: dict, books: dict[str, Path], where: str) -> None:
    """Every section and key of a params file known, every value of the notebook default's kind, every count
    positive, ``baseline_spec`` well formed: checked for all notebooks before the first one runs.

    Raises ChainError with one sentence naming the file, the section, the key and the fix.
    """
    from helpers.baselines import BaselineSpec

    defaults = {prefix: _defaults(nb) for prefix, nb in books.items()}
    declared_anywhere = set().union(*defaults.values()) if defaults else set()
    for section, values in profile_params.items():
        name = str(section).zfill(2) if isinstance(section, int) else str(section)
        if name in OTHER_SECTIONS:
            continue  # read and checked by its own command, not passed to notebooks
        if name != "common" and name not in books:
            raise ChainError(f"params file {where}: section {section!r} is neither 'common' nor a notebook prefix "
                             f"({', '.join(books)}); rename it (prefixes are quoted two-digit strings, e.g. \"08\")")
        for key, value in values.items():
            if name == "common":
                if key not in declared_anywhere:
                    raise ChainError(f"params file {where}: common key {key!r} is declared by no notebook; fix the "
                                     f"name (notebooks declare {', '.join(sorted(declared_anywhere))})")
                owners = [p for p in books if key in defaults[p]]
            else:
                if key not in defaults[name]:
                    raise ChainError(f"params file {where}: section {name!r} sets {key!r}, which {books[name].name} "
                                     f"does not declare; it declares {', '.join(sorted(defaults[name]))}")
                owners = [name]
            for owner in owners:
                default = defaults[owner][key]
                if value is not None and default is not None and _kind(value) != _kind(default):
                    raise ChainError(f"params file {where}: {name}.{key} is {_kind(value)} ({value!r}) but "
                                     f"{books[owner].name} expects {_kind(default)} like {default!r}")
            if key in COUNTS and value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                                        or value < 1):
                raise ChainError(f"params file {where}: {name}.{key} is {value!r}; give a positive whole number"
                                 + (" (or null for all)" if key.endswith("_images") else ""))
            if key == "baseline_spec":
                try:
                    spec = BaselineSpec.parse(value)
                except (TypeError, ValueError) as exc:
                    raise ChainError(f"params file {where}: {name}.{exc}") from None
                if spec.train_images is not None and (isinstance(spec.train_images, bool)
                                                      or not isinstance(spec.train_images, int) or spec.train_images < 1):
                    raise ChainError(f"params file {where}: {name}.baseline_spec.train_images is "
                                     f"{spec.train_images!r}; give a positive whole number (or null for all)")


def chain_order(only: list[str] | str | None, books: dict[str, Path]) -> list[str]:
    """The notebooks to run, in chain order: all, or the prefixes of ``only`` (a list or '01,02').

    Unknown, empty or repeated prefixes are refused in one sentence; the chain's order is kept whatever
    order ``only`` lists them in.
    """
    if only is None:
        return list(books)
    items = [s.strip() for s in only.split(",")] if isinstance(only, str) else [str(s).strip() for s in only]
    if any(not s for s in items):
        raise ChainError(f"--only {','.join(items)!r} has an empty entry; list prefixes like 01,02 without a stray comma")
    items = [s.zfill(2) for s in items]
    unknown = [s for s in items if s not in books]
    if unknown:
        raise ChainError(f"no notebook with prefix {', '.join(unknown)}; available: {', '.join(books)}")
    repeated = sorted({s for s in items if items.count(s) > 1})
    if repeated:
        raise ChainError(f"--only names {', '.join(repeated)} more than once; list each notebook once")
    return [p for p in books if p in items]


def run_chain(profile: str, only: list[str] | None = None, log=print) -> list[dict]:
    """Execute the chain for ``profile`` (optionally only the given prefixes); stop at the first failure.

    Executed notebooks land in runs/<profile>/. Returns one row per notebook with its seconds.
    Raises ChainError naming the notebook and the failing cell.
    """
    params = load_profile(profile)
    books = notebooks()
    selected = chain_order(only, books)
    check_profile(params, books, str(paths.PARAMS / f"{profile}.yaml"))  # every notebook's parameters, before any work
    out_dir = paths.run_dir(profile)
    out_dir.mkdir(parents=True, exist_ok=True)
    from helpers.provenance import current_record, summary

    record = current_record(profile, params)  # measured once, before the first notebook; every table points to it
    log(f"[{profile}] run record {record['id']}: {summary(record)}")
    previous = os.environ.get("WORKBENCH_PROGRESS")
    os.environ["WORKBENCH_PROGRESS"] = "0"  # no bars inside the kernels: the executed notebooks keep every update
    try:
        return _run_notebooks(profile, selected, books, params, out_dir, record, log)
    finally:
        if previous is None:
            os.environ.pop("WORKBENCH_PROGRESS", None)
        else:
            os.environ["WORKBENCH_PROGRESS"] = previous


def _run_notebooks(profile, selected, books, params, out_dir, record, log) -> list[dict]:
    import papermill as pm

    from helpers.io import write_json

    times_path = out_dir / "chain_times.json"
    last = _read_times(times_path)
    expected = sum(last.get(books[p].name, 0) for p in selected) if all(books[p].name in last for p in selected) else None
    rows, t_chain = [], time.perf_counter()
    for i, prefix in enumerate(selected, 1):
        nb = books[prefix]
        nb_params = parameters_for(prefix, nb, params, profile)
        took = f", {last[nb.name]:.0f} s last time" if nb.name in last else ""
        log(f"[{profile}] {i}/{len(selected)} {nb.name} ...{took}")
        t0 = time.perf_counter()
        try:
            pm.execute_notebook(str(nb), str(out_dir / nb.name), parameters=nb_params, kernel_name="python3",
                                cwd=str(paths.NOTEBOOKS), progress_bar=_bar(f"[{profile}] {prefix}"),
                                stdout_file=_Prefixed(log, f"[{profile}] {prefix} | "))
        except pm.PapermillExecutionError as exc:
            raise ChainError(f"notebook {nb.name} failed in cell {exc.exec_count} ({exc.ename}: {exc.evalue}); "
                             f"see the executed copy {out_dir / nb.name}") from None
        _stamp(out_dir / nb.name, record["id"])
        rows.append({"notebook": nb.name, "seconds": round(time.perf_counter() - t0, 1)})
        last = {**last, nb.name: rows[-1]["seconds"]}
        write_json(times_path, last)
        elapsed = time.perf_counter() - t_chain
        of = f" of about {expected:.0f} s expected" if expected else ""
        log(f"[{profile}] {nb.name} done in {rows[-1]['seconds']} s (chain {elapsed:.0f} s{of})")
    return rows


class _Prefixed:
    """A file-like sink for a notebook's printed output: each line goes to ``log`` with a prefix, as it comes."""

    def __init__(self, log, prefix: str):
        self.log, self.prefix, self.buffer = log, prefix, ""

    def write(self, text: str) -> None:
        self.buffer += text
        *lines, self.buffer = self.buffer.split("\n")
        for line in lines:
            if line.strip():
                self.log(self.prefix + line)

    def flush(self) -> None:
        pass


def _bar(desc: str):
    """Papermill's cell progress bar on a terminal (cells done, elapsed, expected); nothing in a log file."""
    return {"desc": desc, "unit": "cell", "leave": False} if sys.stderr.isatty() else False


def _read_times(path: Path) -> dict:
    import json

    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _stamp(executed: Path, record_id: str) -> None:
    """Point an executed notebook at its run record (``metadata.run_record``), atomically."""
    import nbformat

    from helpers.io import atomic_path

    nb = nbformat.read(str(executed), as_version=4)
    nb.metadata["run_record"] = record_id
    with atomic_path(executed) as tmp:
        nbformat.write(nb, str(tmp))
