import json
import shutil

import pytest

from helpers.core import identity, paths
from helpers.records import provenance


def test_code_digest_changes_with_one_line_of_pruning(tmp_path):
    root = tmp_path / "helpers"
    shutil.copytree(identity.PACKAGE_DIR / "compress", root / "compress")
    before = identity.code_digest("compress", root=root)
    f = root / "compress" / "pruning.py"
    f.write_text(f.read_text() + "\n# one more line\n")
    identity.clear_digest_cache()
    assert identity.code_digest("compress", root=root) != before
    with pytest.raises(FileNotFoundError):
        identity.code_digest("nonexistent.py", root=root)


def test_plan_folder_depends_on_the_compression_code(monkeypatch, tmp_path):
    """A changed helpers/compress/ means a new plan folder: cached plan artifacts are never reused across code."""
    from helpers.search import pipeline

    seen = []

    class Stop(Exception):
        pass

    def fake_run(plan, model, ctx, out, *a, **kw):
        seen.append(out)
        raise Stop

    monkeypatch.setattr("helpers.search.pipeline.run_plan", fake_run)
    monkeypatch.setattr("helpers.records.provenance.current_record", lambda profile: {"id": "x"})

    class Ctx:
        train_ds = val_ds = [0] * 4

    plan = {"name": "p", "steps": [{"method": "ptq"}]}
    for salt in ("aaa", "bbb"):
        monkeypatch.setattr("helpers.core.identity.code_digest", lambda *m, salt=salt, **k: salt)
        with pytest.raises(Stop):
            pipeline.plan_row(plan, None, {"path": "ckpt.pt", "config": {}}, Ctx(), "smoke")
    assert seen[0] != seen[1]


def test_git_state_records_a_dirty_tree(monkeypatch, tmp_path):
    import subprocess

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "f.txt").write_text("a")
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run(["git", "-C", str(tmp_path), "add", "f.txt"], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "commit", "-qm", "x"], check=True, env={**env, "PATH": "/usr/bin:/bin"})
    monkeypatch.setattr(paths, "ROOT", tmp_path)
    assert provenance.git_state()["dirty"] is False
    (tmp_path / "f.txt").write_text("b")
    state = provenance.git_state()
    assert state["dirty"] is True and len(state["commit"]) == 40


def test_machine_fingerprint_names_cpu_and_flags():
    m = identity.machine()
    assert m["cores"] >= 1 and m["id"].endswith(m["id"].split("-")[-1]) and f"-{m['cores']}c-" in m["id"]
    assert set(m["flags"]) <= set(identity.ISA_FLAGS)


def test_record_has_the_fields_and_tables_point_to_it(tmp_path, monkeypatch):
    import pandas as pd

    from helpers.records.figures import save_table

    monkeypatch.setattr(paths, "RUNS", tmp_path)
    monkeypatch.setattr(provenance, "characterise", lambda threads=1: {"int8_ms": 1.0, "fp32_ms": 2.0, "int8_speedup": 2.0})
    monkeypatch.setattr(provenance, "_CURRENT", {})
    path = save_table(pd.DataFrame({"a": [1, 2]}), "t", "smoke")
    rec = json.loads((path.parent / "run_record.json").read_text())
    for key in ("id", "git", "code", "packages", "machine", "datasets", "characterisation", "profile", "created"):
        assert key in rec, key
    assert {"ai-edge-litert", "torchao", "scikit-learn", "numpy", "pillow"} <= set(rec["packages"])
    assert set(rec["datasets"]) == {"fashion_mnist", "glyphs"}
    assert set(pd.read_csv(path, dtype={"run_record": str}).run_record) == {rec["id"]}


def test_a_record_id_of_decimal_digits_reads_back_as_text(tmp_path, monkeypatch):
    """A record id is 12 hex digits; about 1 in 300 is all decimal digits, which pandas would read as an integer."""
    import pandas as pd

    from helpers.records.figures import load_table, save_table

    monkeypatch.setattr(paths, "RUNS", tmp_path)
    monkeypatch.setattr(provenance, "current_record", lambda profile, params=None: {"id": "012345678901"})
    save_table(pd.DataFrame({"a": [1, 2]}), "t", "smoke")
    assert set(load_table("t", "smoke").run_record) == {"012345678901"}


def test_an_output_folder_is_replaced_as_one_unit(tmp_path):
    from helpers.core.io import atomic_folder

    out = tmp_path / "plan"
    with atomic_folder(out, owned=("model.tflite", "record.json")) as tmp:
        (tmp / "model.tflite").write_text("m1")
        (tmp / "record.json").write_text("r1")
    with pytest.raises(RuntimeError):  # killed half way: the previous pair stays, whole
        with atomic_folder(out, owned=("model.tflite", "record.json")) as tmp:
            (tmp / "model.tflite").write_text("m2")
            raise RuntimeError("killed before the record")
    assert (out / "model.tflite").read_text() == "m1" and (out / "record.json").read_text() == "r1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan"]  # no temporary folder left behind
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="holds other files \\(notes.txt\\)"):
        with atomic_folder(out, owned=("model.tflite", "record.json")):
            pass
    (tmp_path / "afile").write_text("x")
    with pytest.raises(FileExistsError, match="exists as a file"):
        with atomic_folder(tmp_path / "afile", owned=()):
            pass


def test_export_caches_hash_every_module_that_shapes_an_artifact(tmp_path):
    """The exporter's own helpers imports (top level and inside functions) are in EXPORT_CODE or only write files or
    silence logs; a one-line change to any module of a cache key gives a new key."""
    import ast
    import shutil

    tree = ast.parse(identity.module_file("export").read_text())
    imported = set()
    for n in ast.walk(tree):  # from helpers.core import io -> io; from helpers.deploy.int8_recipe import x -> int8_recipe
        if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("helpers."):
            parts = n.module.split(".")
            imported |= {parts[2]} if len(parts) > 2 else {a.name for a in n.names}
    assert imported - {m[:-3] for m in identity.EXPORT_CODE} <= {"io", "quiet"}, imported
    pkg = tmp_path / "helpers"
    shutil.copytree(identity.PACKAGE_DIR, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    keys = {"artifacts": (*identity.EXPORT_CODE, "data.py"),
            "plans": ("compress", "data.py", "train.py", "models.py", *identity.EXPORT_CODE)}
    for name, modules in keys.items():
        for module in [m for m in modules if m.endswith(".py")]:
            before = identity.code_digest(*modules, root=pkg)
            source = identity.module_file(module, root=pkg)
            source.write_text(source.read_text() + "\n# one line more\n")
            identity.clear_digest_cache()
            assert identity.code_digest(*modules, root=pkg) != before, f"{name} ignores {module}"
