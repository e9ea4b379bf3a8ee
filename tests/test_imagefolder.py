"""A user's image folder as a dataset (helpers.datasets.imagefolder via load_dataset("imagefolder:<path>")): splits, sizes,
modes, the fingerprint, and every bad folder answered in one sentence before anything is trained."""

import numpy as np
import pytest
from PIL import Image

from helpers.datasets.data import load_dataset


def _folder(root, classes=("cat", "dog", "owl"), n=10, mode="L", size=20, seed=0):
    rng = np.random.default_rng(seed)
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            shape = (size, size) if mode == "L" else (size, size, 3)
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(root / c / f"{i}.png")
    return root


def test_a_folder_of_classes_is_split_by_seed_stratified_and_the_same_every_time(tmp_path):
    root = _folder(tmp_path / "pets")
    name = f"imagefolder:{root}"
    parts = {s: load_dataset(name, s, input_size=16) for s in ("train", "val", "test")}
    assert sum(len(d) for d in parts.values()) == 30
    assert [len(parts[s]) for s in ("train", "val", "test")] == [24, 3, 3]
    for d in parts.values():
        assert d.classes == ["cat", "dog", "owl"] and set(d.targets.tolist()) == {0, 1, 2}
        assert tuple(d.images.shape[1:]) == (1, 16, 16)
    again = load_dataset(name, "val", input_size=16)
    assert again.fingerprint == parts["val"].fingerprint and bool((again.images == parts["val"].images).all())
    Image.fromarray(np.zeros((20, 20), np.uint8), "L").save(root / "owl" / "3.png")  # one file changes
    assert load_dataset(name, "val", input_size=16).fingerprint != parts["val"].fingerprint


def test_split_folders_are_the_splits_and_colour_gives_three_channels(tmp_path):
    root = tmp_path / "shapes"
    for s, n in (("train", 6), ("val", 2), ("test", 3)):
        _folder(root / s, classes=("a", "b"), n=n, mode="RGB", seed=len(s))
    d = load_dataset(f"imagefolder:{root}", "test", input_size=24)
    assert len(d) == 6 and tuple(d.images.shape[1:]) == (3, 24, 24) and d.classes == ["a", "b"]


@pytest.mark.parametrize("spoil,answer", [
    ("flat", "has no class sub-folders"),
    ("garbage", "cannot be read"),
    ("empty", "the file is empty"),
    ("few", "class 'owl' has 2 image"),
    ("mixed", "mixes grey and colour images"),
    ("missing", "does not exist"),
])
def test_a_bad_folder_is_answered_in_one_sentence(tmp_path, spoil, answer):
    root = tmp_path / "pets"
    if spoil == "flat":
        root.mkdir()
        Image.fromarray(np.zeros((8, 8), np.uint8), "L").save(root / "x.png")
    elif spoil != "missing":
        _folder(root, classes=("cat", "dog"))
        owl = root / "owl"
        owl.mkdir()
        if spoil == "few":
            for i in range(2):
                Image.fromarray(np.zeros((8, 8), np.uint8), "L").save(owl / f"{i}.png")
        else:
            _folder(root, classes=("owl",), mode="RGB" if spoil == "mixed" else "L")
        if spoil == "garbage":
            (owl / "5.png").write_bytes(b"not a png")
        if spoil == "empty":
            (owl / "5.png").write_bytes(b"")
    with pytest.raises(ValueError, match=answer):
        load_dataset(f"imagefolder:{root}", "train")


def test_an_unknown_dataset_name_names_the_image_folder_form():
    with pytest.raises(ValueError, match="imagefolder:<path>"):
        load_dataset("mnist", "train")


def _weights(tmp_path, classes=3, whole=False):
    import torch
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.get_model("squeezenet1_1", weights=None, num_classes=classes).eval()
    path = tmp_path / ("model.pt" if whole else f"state-{classes}.pt")
    torch.save(model if whole else model.state_dict(), path)
    return model, path


def test_a_torchvision_state_dict_is_imported_as_a_baseline_that_loads_again(tmp_path, monkeypatch):
    import torch

    from helpers.core import paths
    from helpers.networks.baselines import import_baseline
    from helpers.networks.checkpoints import load_model

    monkeypatch.setattr(paths, "CHECKPOINTS", tmp_path / "checkpoints")
    root = _folder(tmp_path / "pets", mode="RGB", size=40)
    model, weights = _weights(tmp_path)
    rec = import_baseline("squeezenet1_1", weights, f"imagefolder:{root}", 48, progress=False)
    assert rec["config"]["model"] == "squeezenet1_1" and rec["config"]["input_size"] == 48
    assert rec["metrics"]["val_n"] == 3 and 0 <= rec["metrics"]["val_accuracy"] <= 1
    again, cfg = load_model(rec["path"])
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        assert torch.allclose(again(x), model(x), atol=1e-6)


@pytest.mark.slow  # seconds, not milliseconds: kept out of `make check`
def test_bad_imports_get_one_sentence_and_exit_2_with_nothing_written(tmp_path):
    import subprocess
    import sys

    from helpers.core import paths

    root = _folder(tmp_path / "pets", mode="RGB", size=40)
    _, good = _weights(tmp_path)
    _, five = _weights(tmp_path, classes=5)
    _, whole = _weights(tmp_path, whole=True)
    flat = tmp_path / "flat"
    flat.mkdir()
    before = sorted(paths.CHECKPOINTS.glob("*")) if paths.CHECKPOINTS.exists() else []
    for arch, weights, data, answer in [
        ("resnet999", good, f"imagefolder:{root}", "unknown architecture 'resnet999'"),
        ("squeezenet1_1", whole, f"imagefolder:{root}", "pickled Python object"),
        ("squeezenet1_1", five, f"imagefolder:{root}", "classifies into 5 classes"),
        ("squeezenet1_1", good, f"imagefolder:{flat}", "has no class sub-folders"),
    ]:
        r = subprocess.run([sys.executable, "-m", "helpers", "baseline", "import", "--arch", arch, "--weights",
                            str(weights), "--data", data, "--input-size", "48"], capture_output=True, text=True,
                           cwd=paths.ROOT, timeout=300)
        assert r.returncode == 2 and answer in r.stderr, (arch, r.stderr[-500:])
        assert len(r.stderr.strip().splitlines()) == 1
    assert (sorted(paths.CHECKPOINTS.glob("*")) if paths.CHECKPOINTS.exists() else []) == before


def _pictures(root, classes=3, n=12, size=64):
    """Generated colour pictures a network can tell apart: each class its own hue and stripe direction."""
    rng = np.random.default_rng(1)
    for k in range(classes):
        (root / f"c{k}").mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = rng.integers(0, 60, (size, size, 3)).astype(np.uint8)
            img[..., k % 3] += 150
            if k % 2:
                img[:, ::8] = 255
            else:
                img[::8] = 255
            Image.fromarray(img, "RGB").save(root / f"c{k}" / f"{i}.png")
    return root


def _trained(arch, classes, size, path):
    """A torchvision network the workbench does not define, trained a few steps on random data, saved as a state_dict."""
    import torch
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.get_model(arch, weights=None, num_classes=classes)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(3):
        x, y = torch.randn(8, 3, size, size), torch.randint(0, classes, (8,))
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    torch.save(model.eval().state_dict(), path)
    return path


def _cli(*args):
    import subprocess
    import sys

    from helpers.core import paths

    return subprocess.run([sys.executable, "-m", "helpers", *args], capture_output=True, text=True, cwd=paths.ROOT,
                          timeout=900)


@pytest.mark.slow
def test_a_users_mobilenet_at_96_pixels_exports_at_96_and_is_timed(tmp_path):
    import json

    root = _pictures(tmp_path / "pictures", size=96)
    weights = _trained("mobilenet_v2", 3, 96, tmp_path / "mobilenet.pt")
    r = _cli("baseline", "import", "--arch", "mobilenet_v2", "--weights", str(weights), "--data",
             f"imagefolder:{root}", "--input-size", "96", "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    ckpt = json.loads(r.stdout)["path"]
    out = tmp_path / "m.tflite"
    r = _cli("export", ckpt, "--mode", "int8", "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    from helpers.deploy.inspection import inspect_tflite

    info = inspect_tflite(out)
    assert info.full_integer and list(info.input_shape)[1:3] == [96, 96]  # NHWC, the user's size
    r = _cli("bench", str(out), "--json", "--repeats", "10")
    assert r.returncode == 0, r.stderr[-2000:]
    row = json.loads(r.stdout)
    assert row["median_ms"] > 0


@pytest.mark.slow
def test_the_readme_example_runs_as_written_on_a_generated_folder(tmp_path):
    """The README's worked example, line for line (``.venv/bin/python`` is this interpreter), in a folder holding a
    generated photos/ and a SqueezeNet state_dict for its classes: a network the workbench does not define, imported
    and searched to a full-integer artifact scored on the folder's test split, placed and timed at 64 px. (SqueezeNet:
    a conv classifier and Fire modules' concatenations; ShuffleNetV2's channel shuffle is a reshape torch-pruning
    1.6.1's dependency graph cannot follow.)"""
    import json
    import os
    import re
    import subprocess
    import sys

    from helpers.core import paths

    text = (paths.ROOT / "README.md").read_text()
    block = re.search(r"<!-- example: own network -->\n```bash\n(.*?)```\n<!-- end example -->", text, re.S).group(1)
    _pictures(tmp_path / "photos")
    _trained("squeezenet1_1", 3, 64, tmp_path / "my_weights.pt")
    script = block.replace(".venv/bin/python", sys.executable)
    committed = sorted(paths.RESULTS.rglob("run_record.json"))
    before = {p: p.read_bytes() for p in committed}
    results_before = set(paths.RESULTS.rglob("*"))
    env = {**os.environ, "PYTHONPATH": str(paths.ROOT)}
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                       timeout=900, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads((tmp_path / "my-search.json").read_text())
    assert out["best"]["full_integer"] and out["best"]["checks_fail"] == 0  # a SqueezeNet pruned, tuned, int8
    assert out["test"]["n"] == 3 and 0 <= out["test"]["correct"] <= 3  # 1 test picture of 12 per class, scored once
    assert "median_ms" in r.stdout  # the chosen artifact timed at the user's size
    assert {p: p.read_bytes() for p in committed} == before  # a user's search never replaces a chain's run record
    assert set(paths.RESULTS.rglob("*")) == results_before  # nor adds to the committed results: its record is its own
    assert list((tmp_path / "my-search.run_records").glob("*.json"))  # beside its log
    assert not list(paths.ROOT.glob("my-search*"))  # the trial log and reference lie beside the config, not here
