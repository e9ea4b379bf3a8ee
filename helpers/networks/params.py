"""Profiles and notebook parameters: loading params/<profile>.yaml, what each notebook declares and runs with, and
the checks that more than one notebook or command shares, each failing in one sentence."""

from __future__ import annotations

from pathlib import Path

import yaml

from helpers.core import paths

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
        from helpers.core.io import yaml_problem

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
    from helpers.networks.baselines import BaselineSpec

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
                for field in ("train_images", "val_images"):
                    n = getattr(spec, field)
                    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
                        raise ChainError(f"params file {where}: {name}.baseline_spec.{field} is {n!r}; give a positive "
                                         "whole number (or null for all)")



def per_dataset(name: str, value, datasets) -> dict:
    """``value`` for each of ``datasets``: a dict is checked to cover them all, a single value is repeated."""
    value = value if isinstance(value, dict) else dict.fromkeys(datasets, value)
    missing = [ds for ds in datasets if ds not in value]
    if missing:
        raise ValueError(f"{name} has no value for dataset {missing[0]!r}; give one per dataset or a single number")
    return value
