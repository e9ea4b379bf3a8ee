"""The Papermill chain: run notebooks/NN_*.ipynb in order with the parameters of params/<profile>.yaml."""

from __future__ import annotations

import time
from pathlib import Path

import yaml

from helpers import paths

PROFILES = ("smoke", "default", "full")


class ChainError(RuntimeError):
    """A notebook of the chain failed or its parameters are malformed."""


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
        raise ChainError(f"params file {path} is not valid YAML ({str(exc).splitlines()[0]}); fix the syntax") from None
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


def run_chain(profile: str, only: list[str] | None = None, log=print) -> list[dict]:
    """Execute the chain for ``profile`` (optionally only the given prefixes); stop at the first failure.

    Executed notebooks land in runs/<profile>/. Returns one row per notebook with its seconds.
    Raises ChainError naming the notebook and the failing cell.
    """
    import papermill as pm

    params = load_profile(profile)
    books = notebooks()
    selected = list(books) if not only else only
    missing = [p for p in selected if p not in books]
    if missing:
        raise ChainError(f"no notebook with prefix {', '.join(missing)}; available: {', '.join(books)}")
    out_dir = paths.run_dir(profile)
    out_dir.mkdir(parents=True, exist_ok=True)
    from helpers.provenance import current_record, summary

    record = current_record(profile, params)  # measured once, before the first notebook; every table points to it
    log(f"[{profile}] run record {record['id']}: {summary(record)}")
    rows = []
    for prefix in selected:
        nb = books[prefix]
        nb_params = parameters_for(prefix, nb, params, profile)
        log(f"[{profile}] running {nb.name} ...")
        t0 = time.perf_counter()
        try:
            pm.execute_notebook(str(nb), str(out_dir / nb.name), parameters=nb_params, kernel_name="python3",
                                cwd=str(paths.NOTEBOOKS), progress_bar=False)
        except pm.PapermillExecutionError as exc:
            raise ChainError(f"notebook {nb.name} failed in cell {exc.exec_count} ({exc.ename}: {exc.evalue}); "
                             f"see the executed copy {out_dir / nb.name}") from None
        _stamp(out_dir / nb.name, record["id"])
        rows.append({"notebook": nb.name, "seconds": round(time.perf_counter() - t0, 1)})
        log(f"[{profile}] {nb.name} done in {rows[-1]['seconds']} s")
    return rows


def _stamp(executed: Path, record_id: str) -> None:
    """Point an executed notebook at its run record (``metadata.run_record``), atomically."""
    import nbformat

    from helpers.io import atomic_path

    nb = nbformat.read(str(executed), as_version=4)
    nb.metadata["run_record"] = record_id
    with atomic_path(executed) as tmp:
        nbformat.write(nb, str(tmp))
