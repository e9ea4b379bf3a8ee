"""The Papermill chain: run notebooks/NN_*.ipynb in order with the parameters of params/<profile>.yaml."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


from helpers.core import paths
from helpers.networks.params import ChainError, check_profile, load_profile, notebooks, parameters_for

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

    Executed notebooks land in runs/<profile>/, and a reader's copy of each (the chapter, see
    :func:`helpers.records.chapters.save_chapter`) in results/<profile>/<machine>/chapters/. Returns one row per notebook
    with its seconds.
    Raises ChainError naming the notebook and the failing cell.
    """
    params = load_profile(profile)
    books = notebooks()
    selected = chain_order(only, books)
    check_profile(params, books, str(paths.PARAMS / f"{profile}.yaml"))  # every notebook's parameters, before any work
    out_dir = paths.run_dir(profile)
    out_dir.mkdir(parents=True, exist_ok=True)
    from helpers.records.provenance import current_record, summary

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

    from helpers.records.chapters import chapters_dir, save_chapter
    from helpers.core.io import write_json

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
        save_chapter(out_dir / nb.name, chapters_dir(profile, record["machine"]["id"]), record)
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

    from helpers.core.io import atomic_path

    nb = nbformat.read(str(executed), as_version=4)
    nb.metadata["run_record"] = record_id
    with atomic_path(executed) as tmp:
        nbformat.write(nb, str(tmp))
