"""The house's layers, enforced from the tree itself: ``helpers`` is a set of layer packages (``helpers.LAYERS``,
bottom first) with the chain runner and the CLI on top. Every import of every module -- top level and inside
functions, ``import helpers.a.b``, ``from helpers import a``, ``from helpers.a.b import c``, relative imports and
``importlib.import_module("helpers...")`` -- goes to its own package or one below; no module imports a cycle; and no
package, test or benchmark touches another package's private names (a leading underscore)."""

import ast
from pathlib import Path

import helpers
from helpers.core import paths

PACKAGE = paths.ROOT / "helpers"
TOP = len(helpers.LAYERS)  # rank of the roof: runner, cli, __main__, __init__


def _dotted(path: Path) -> str:
    rel = path.relative_to(paths.ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _rank(dotted: str) -> int:
    """Layer rank of a module ``helpers.<package>[.<module>]``; a top-level module is the roof."""
    parts = dotted.split(".")
    if len(parts) == 1:
        return TOP
    return helpers.LAYERS.index(parts[1]) if parts[1] in helpers.LAYERS else TOP


def _targets(path: Path, tree) -> list[tuple[str, list[str], int]]:
    """(module imported, names taken from it, line) for every helpers import in ``tree``."""
    own = _dotted(path).split(".")
    package = own if path.name == "__init__.py" else own[:-1]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative: resolved against the file's own package
                module = ".".join(package[:len(package) - node.level + 1] + ([module] if module else []))
            if module.split(".")[0] != "helpers":
                continue
            names = [a.name for a in node.names]
            if module == "helpers":  # from helpers import core, cli: each name is a package or a top module
                out += [(f"helpers.{n}", [], node.lineno) for n in names if n != "*"]
            else:
                out.append((module, names, node.lineno))
        elif isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names if a.name.split(".")[0] == "helpers"]
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and str(node.args[0].value).startswith("helpers.")):
            out.append((node.args[0].value, [], node.lineno))
    return out


def _sources(folder: Path):
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def test_the_tree_shows_the_layers():
    """At least six layer packages and at most six top-level modules; every package says its job and its names."""
    packages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists())
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert sorted(helpers.LAYERS) == packages and len(packages) >= 6
    assert len(top) <= 6, top
    for name in packages:
        init = PACKAGE / name / "__init__.py"
        tree = ast.parse(init.read_text())
        assert ast.get_docstring(tree), f"{name}/__init__.py states no job"
        mod = __import__(f"helpers.{name}", fromlist=["__all__"])
        modules = {p.stem for p in (PACKAGE / name).glob("*.py")} - {"__init__"}
        assert modules <= set(mod.__all__), f"{name}.__all__ misses {modules - set(mod.__all__)}"


def test_no_import_goes_up_a_layer():
    up = []
    for path in _sources(PACKAGE):
        own = _dotted(path)
        for target, _, line in _targets(path, ast.parse(path.read_text())):
            if _rank(target) > _rank(own):
                up.append(f"{own}:{line} imports {target}")
    assert up == []


def test_the_rank_rule_catches_every_import_form(tmp_path):
    """The checker itself: each import form of a module higher up is seen (a checker that saw none would pass)."""
    forms = ["import helpers.reports.book", "from helpers import reports", "from helpers.reports import book",
             "from helpers.reports.book import build", "def f():\n    from helpers.reports import book",
             "from ..reports import book", "import importlib\nimportlib.import_module('helpers.reports.book')"]
    fake = PACKAGE / "core" / "fake.py"
    for src in forms:
        targets = _targets(fake, ast.parse(src))
        assert [t for t, _, _ in targets] and all(_rank(t) > _rank("helpers.core.fake") for t, _, _ in targets), src


def test_no_import_cycle():
    graph: dict[str, set[str]] = {}
    for path in _sources(PACKAGE):
        own = _dotted(path)
        for target, names, _ in _targets(path, ast.parse(path.read_text())):
            # a name taken from a package may be one of its modules: that module is the dependency
            subs = [f"{target}.{n}" for n in names if (PACKAGE.parent / f"{target}.{n}".replace(".", "/")).with_suffix(
                ".py").exists()]
            graph.setdefault(own, set()).update(subs or [target])
        graph[own] = graph.get(own, set()) - {own, "helpers"}
    state, cycles = {}, []

    def visit(node, trail):
        state[node] = "open"
        for nxt in graph.get(node, ()):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(trail[trail.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for node in graph:
        if node not in state:
            visit(node, [node])
    assert cycles == []


def _private_uses(path: Path, own_package: str | None) -> list[str]:
    """Every private name of another helpers package that ``path`` imports or reads as ``module._name``."""
    tree = ast.parse(path.read_text())
    found, modules = [], {}

    def foreign(dotted: str) -> bool:
        parts = dotted.split(".")
        return len(parts) > 1 and parts[1] != own_package

    for target, names, line in _targets(path, tree):
        if foreign(target):
            found += [f"{path.name}:{line} imports {target}.{n}" for n in names
                      if n.startswith("_") and not n.startswith("__")]
    for node in ast.walk(tree):  # names bound to helpers modules: from helpers.x import y; import helpers.x.y as z
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("helpers"):
            for a in node.names:
                modules[a.asname or a.name] = f"{node.module}.{a.name}"
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("helpers.") and a.asname:
                    modules[a.asname] = a.name
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules
                and node.attr.startswith("_") and not node.attr.startswith("__") and foreign(modules[node.value.id])):
            found.append(f"{path.name}:{node.lineno} reads {modules[node.value.id]}.{node.attr}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("helpers."):
            parts = node.value.split(".")
            if any(p.startswith("_") and not p.startswith("__") for p in parts) and foreign(node.value):
                found.append(f"{path.name}:{node.lineno} names {node.value}")
    return found


def test_no_private_name_crosses_a_package():
    found = []
    for path in _sources(PACKAGE):
        parts = _dotted(path).split(".")
        found += _private_uses(path, parts[1] if len(parts) > 2 or path.name == "__init__.py" and len(parts) > 1
                               else None)
    for folder in ("tests", "benchmarks"):
        for path in _sources(paths.ROOT / folder):
            found += _private_uses(path, None)
    assert found == []


def test_an_old_import_path_fails_in_one_sentence():
    """A notebook of the flat layout (``from helpers import table``) is told where the module lives now."""
    import subprocess
    import sys

    for src in ("from helpers import table", "import helpers.trials", "from helpers.tables import pays"):
        res = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, timeout=60)
        last = res.stderr.strip().splitlines()[-1]
        assert res.returncode == 1 and "moved to helpers." in last, (src, last)
    res = subprocess.run([sys.executable, "-c", "from helpers.search import run_search; print(run_search.__module__)"],
                         capture_output=True, text=True, timeout=60)
    assert res.stdout.strip() == "helpers.search.engine", res.stderr
