"""Cache keys of committed results under the layered house: a module's digest follows its logical name, so moving it
between packages changes no key; every key the committed results hold is recomputed from the code that made it,
and the ones that differ from today's code are listed with the commit that made them (the why).

Keys that carry code: the artifact folder (``artifacts.artifact_path``: the exporter, the int8 recipe and the data
loader), a baseline's checkpoint name (``baselines._configured``: the model and the training loop, with the config
and the data's fingerprint), a plan's folder (``pipeline``: compress, data, train, models and the exporter).
"""

import json
import re
import shutil
import subprocess
import tarfile
from io import BytesIO

import pytest

from helpers.core import identity, paths

EXPORT_KEY = (*identity.EXPORT_CODE, "data.py")
KEYS = {"artifacts": EXPORT_KEY, "baselines": ("models.py", "train.py"),
        "plans": ("compress", "data.py", "train.py", "models.py", *identity.EXPORT_CODE),
        "lut": ("lut.py", "latency.py", *identity.EXPORT_CODE), "characterisation": ("models.py", *identity.EXPORT_CODE)}
#: module sets an artifact key hashed in earlier versions of artifacts.py (before int8_recipe.py joined it)
EARLIER_EXPORT_KEYS = (EXPORT_KEY, ("export.py", "data.py"))
#: the last commit of the flat layout
FLAT = "93869f7"


def _move(pkg, module: str, to: str) -> None:
    """Move helpers.<from>.<module> to helpers.<to>.<module> in the copy ``pkg`` and rewrite every import of it, the way
    the house was moved: ``from helpers.deploy.export import x`` and ``from helpers.deploy import export``."""
    src = identity.module_file(module, root=pkg)
    old = src.parent.name
    (pkg / to).mkdir(exist_ok=True)
    (pkg / to / "__init__.py").touch()
    shutil.move(src, pkg / to / src.name)
    for f in pkg.rglob("*.py"):
        text = f.read_text()
        new = text.replace(f"helpers.{old}.{src.stem} ", f"helpers.{to}.{src.stem} ")
        new = re.sub(rf"^(\s*)from helpers\.{old} import (.*)\b{src.stem}\b(.*)$",
                     lambda m: _split(m, old, to, src.stem), new, flags=re.M)
        if new != text:
            f.write_text(new)


def _split(m, old: str, to: str, stem: str) -> str:
    rest = [n.strip() for n in (m.group(2) + m.group(3)).split(",") if n.strip()]
    lines = [f"{m.group(1)}from helpers.{old} import {', '.join(rest)}"] if rest else []
    return "\n".join(lines + [f"{m.group(1)}from helpers.{to} import {stem}"])


def test_moving_a_module_changes_no_key_and_editing_it_does(tmp_path):
    pkg = tmp_path / "helpers"
    shutil.copytree(identity.PACKAGE_DIR, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    before = {name: identity.code_digest(*mods, root=pkg) for name, mods in KEYS.items()}
    assert before == {name: identity.code_digest(*mods) for name, mods in KEYS.items()}
    _move(pkg, "export", "networks")
    _move(pkg, "data", "core")
    _move(pkg, "paths", "records")
    assert identity.module_file("export", root=pkg).parent.name == "networks"
    assert "from helpers.networks.export import" in identity.module_file("lut", root=pkg).read_text()
    assert "from helpers.records import paths" in identity.module_file("lut", root=pkg).read_text()
    identity.clear_digest_cache()
    assert {name: identity.code_digest(*mods, root=pkg) for name, mods in KEYS.items()} == before
    f = identity.module_file("int8_recipe", root=pkg)
    f.write_text(f.read_text().replace("def ", "def  ", 1))  # one character of the int8 recipe
    identity.clear_digest_cache()
    after = {name: identity.code_digest(*mods, root=pkg) for name, mods in KEYS.items()}
    assert {n for n in KEYS if after[n] != before[n]} == {"artifacts", "plans", "lut", "characterisation"}


def test_an_import_split_over_packages_reads_as_the_flat_one():
    """``from helpers import data, paths`` of the flat layout became two statements; their logical form is one again."""
    layered = "from helpers.datasets import data\nfrom helpers.core import paths\n\ndef f():\n    from helpers.deploy.export import x\n"
    flat = "from helpers import data, paths\n\ndef f():\n    from helpers.export import x\n"
    assert identity.logical_source(layered, {"core", "datasets", "deploy"}) == flat


def _git(*args) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=paths.ROOT, capture_output=True, timeout=60)


def _flat_tree(commit: str, dest):
    """The ``helpers/`` folder of ``commit`` (git archive), unpacked under ``dest``."""
    res = _git("archive", commit, "helpers")
    tarfile.open(fileobj=BytesIO(res.stdout)).extractall(dest, filter="data")
    return dest / "helpers"


def _history_or_skip() -> list[str]:
    if _git("cat-file", "-e", f"{FLAT}^{{commit}}").returncode != 0:
        pytest.skip(f"this checkout lacks the commit {FLAT} (a shallow clone): the keys' history cannot be read")
    log = _git("log", "--format=%h", f"{FLAT}", "--", *(f"helpers/{m}" for m in ("export.py", "int8_recipe.py",
                                                                                "data.py")))
    return log.stdout.decode().split()


def test_the_flat_layout_and_the_house_give_the_same_keys(tmp_path):
    """The last flat commit's tree and today's, digested by today's code: a key differs exactly where one of its
    modules' logical source changed since (an edit), never because a module moved."""
    _history_or_skip()
    flat = _flat_tree(FLAT, tmp_path)
    packages = {p.name for p in identity.PACKAGE_DIR.iterdir() if (p / "__init__.py").is_file()} - {"compress"}
    edited = set()
    for f in identity.PACKAGE_DIR.rglob("*.py"):
        name = identity.logical_path(f)
        old = flat / name
        if "__pycache__" not in f.parts and old.exists() and identity.logical_source(f.read_text(), packages) != \
                old.read_text():
            edited.add(name)
    for name, mods in KEYS.items():
        files = {m for m in mods if m.endswith(".py")} | {n for n in edited for m in mods if n.startswith(m + "/")}
        same = identity.code_digest(*mods, root=flat) == identity.code_digest(*mods)
        assert same == (not files & edited), (name, sorted(files & edited))


def _committed_artifact_keys() -> dict[str, list[str]]:
    """Every artifact key (the folder ``runs/artifacts/<checkpoint>/<key>/``) in the committed results -> its files."""
    out: dict[str, list[str]] = {}
    for f in sorted(paths.RESULTS.rglob("*")):
        if f.suffix in (".json", ".jsonl", ".csv") and f.is_file():
            for key in set(re.findall(r"runs/artifacts/[^/\"',]+/([0-9a-f]{12})/", f.read_text())):
                out.setdefault(key, []).append(paths.portable(f))
    return out


def test_every_committed_key_is_recomputed_from_the_code_that_made_it(tmp_path):
    """Each artifact key in results/ is made again by the digest of today's code or of one earlier commit's; the keys
    that today's code no longer makes are printed with that commit (the reason they changed: its code did)."""
    commits = _history_or_skip()
    keys = _committed_artifact_keys()
    assert keys, "no committed result names an artifact folder"
    now = identity.code_digest(*EXPORT_KEY)
    made_by: dict[str, str] = {now: "today's code (unchanged by the move)"} if now in keys else {}
    for i, commit in enumerate(commits):
        if set(keys) <= set(made_by):
            break
        tree = _flat_tree(commit, tmp_path / str(i))
        for mods in EARLIER_EXPORT_KEYS:
            try:
                key = identity.code_digest(*mods, root=tree)
            except FileNotFoundError:
                continue
            if key in keys and key not in made_by:
                date = _git("log", "-1", "--format=%cs", commit).stdout.decode().strip()
                made_by[key] = f"the code of {commit} ({date}), hashing {', '.join(mods)}"
    print("\ncommitted artifact key | files | made by")
    for key, files in sorted(keys.items()):
        print(f"{key} | {len(files)} | {made_by.get(key, 'NOT FOUND')}")
    assert set(keys) <= set(made_by), {k: keys[k] for k in set(keys) - set(made_by)}
    # the newest committed table was built after the last change to the exporter: its key is today's
    table = json.loads((paths.RESULTS / "study" / "o8-table" / "amd-epyc-2c-d3c3b3" / "glyphs-reference.json")
                       .read_text())
    assert f"/{now}/" in table["int8_artifact"]


_NAMES = """
import importlib, json, sys
mods = json.loads(sys.argv[1])
get = lambda name, attr: getattr(importlib.import_module(mods[name]), attr)
paths = importlib.import_module(mods["paths"])
cfg = get("table_config", "load_table_config")(paths.PARAMS / "tables" / "o8-table.yaml")
spec = get("baselines", "BaselineSpec").parse(get("params", "load_profile")(cfg.profile)["common"]["baseline_spec"])
out = {}
for ds in ("fashion_mnist", "glyphs"):
    ref = json.loads((paths.RESULTS / "study" / "o8-table" / "amd-epyc-2c-d3c3b3" / f"{ds}-reference.json").read_text())
    base = get("baselines", "checkpoint_path")(cfg.architecture, ds, spec.widths[cfg.architecture], spec.epochs[ds],
                                               spec.batch_size, spec.lr, spec.train_images, seed=spec.seed).stem
    split = len(get("data", "load_dataset")(ds, "train"))
    row = {"kind": "budget_matched", "fraction": 1.0, "channels": None, "budget": ref["budget"],
           "epochs": get("budget", "epochs_for")(ref["budget"], spec.train_images, split)}
    out[ds] = {"baseline": base, "matched": get("controls", "control_key")(cfg.architecture, ds, row, spec).split("-", 1)[1],
               "committed": [ref["int8_artifact"].split("/")[2], ref["matched_checkpoint"].split("/")[-1][:-3]]}
print(json.dumps(out))
"""


@pytest.mark.slow
def test_committed_checkpoint_names_are_made_again(tmp_path):
    """The checkpoint names of the table's baseline and budget-matched network (its ``matched_checkpoint``), as the last
    flat commit's code and today's code give them on this machine: the same names. The names committed from the table's
    machine are printed beside them: a checkpoint's key holds the training precision this machine resolves and the
    data's fingerprint, so another machine may name the same config otherwise (not a change of the move)."""
    import os
    import sys

    from helpers.core.moved import moved

    _history_or_skip()
    flat = _flat_tree(FLAT, tmp_path).parent
    env = {**os.environ, "WORKBENCH_ROOT": str(paths.ROOT)}  # the flat code reads this checkout's data and results
    used = ("paths", "table_config", "baselines", "params", "data", "budget", "controls")

    def names(cwd, modules):
        res = subprocess.run([sys.executable, "-c", _NAMES, json.dumps(modules)], cwd=cwd, env=env,
                             capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr[-2000:]
        return json.loads(res.stdout.strip().splitlines()[-1])

    now = names(paths.ROOT, {m: f"helpers.{moved()[m]}" for m in used})
    before = names(flat, {m: f"helpers.{m}" for m in used})
    print("\ndataset | checkpoint | flat layout | layered | committed on the table's machine")
    for ds, row in now.items():
        for i, what in enumerate(("baseline", "matched")):
            print(f"{ds} | {what} | {before[ds][what]} | {row[what]} | {row['committed'][i]}")
    assert now == before
