"""The house's layers, enforced: every import between helpers modules (top level and inside functions, both
``from helpers import x`` and ``from helpers.x import y``) goes to the same or a lower layer, and there is no
import cycle. Data flows one way: data -> model (and the profiles that say how to train it) -> compress -> export -> measure -> records -> one plan ->
storage -> search -> experiments -> analysis -> reports -> chain and CLI."""

import ast

from helpers import paths

LAYERS = [
    ("base", {"paths", "io", "identity", "quiet", "migrations", "benchmarks", "inspection", "stats", "bars", "budget",
              "edgetpu_rules"}),
    ("data", {"data", "glyphs", "imagefolder"}),
    ("model and profiles", {"models", "zoo", "train", "checkpoints", "baselines", "params"}),
    ("compress", {"compress", "int8_recipe"}),
    ("export", {"export", "artifacts"}),
    ("measure", {"runtime", "latency", "layers", "lut", "edgetpu", "deployment"}),
    ("records", {"provenance", "figures", "chapters"}),
    ("one plan and storage", {"pipeline", "references", "trials", "objective"}),
    ("search", {"trial", "proposals", "search", "cluster"}),
    ("experiments", {"experiment", "controls", "scratch_b", "study", "study_config", "study_analysis", "search_space",
                     "selection", "table_config", "table", "replay"}),
    ("analysis", {"curve", "verdicts", "tables", "findings", "final_report", "table_analysis"}),
    ("reports", {"plots", "report", "controls_report", "markdown", "table_report", "book", "browser"}),
    ("chain and CLI", {"runner", "cli", "__main__", "__init__"}),
]
RANK = {m: i for i, (_, mods) in enumerate(LAYERS) for m in mods}


def _module(path) -> str:
    rel = path.relative_to(paths.ROOT / "helpers")
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem  # the compress package counts as one module


def imports() -> dict[str, set[str]]:
    """Every helpers module -> the helpers modules it imports anywhere in its source."""
    out: dict[str, set[str]] = {}
    for path in sorted((paths.ROOT / "helpers").rglob("*.py")):
        mod, deps = _module(path), set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "helpers":
                parts = node.module.split(".")
                deps |= {a.name for a in node.names} if len(parts) == 1 else {parts[1]}
            elif isinstance(node, ast.Import):
                deps |= {a.name.split(".")[1] for a in node.names if a.name.startswith("helpers.")}
        out.setdefault(mod, set()).update(deps - {mod})
    return out


def test_every_module_has_a_layer():
    assert set(imports()) - set(RANK) == set()


def test_no_import_goes_up_a_layer():
    up = [f"{m} ({LAYERS[RANK[m]][0]}) imports {d} ({LAYERS[RANK[d]][0]})"
          for m, deps in imports().items() for d in deps if RANK[d] > RANK[m]]
    assert up == []


def test_no_import_cycle():
    graph = imports()
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
