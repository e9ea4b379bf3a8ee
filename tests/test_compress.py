"""Each compression method's verified effect on a small model, in PyTorch and in the exported artifact."""

import pytest
import torch

from helpers.compress import Context
from helpers.compress.plan import CompressionPlan
from helpers.compress.pruning import weight_sparsity
from helpers.datasets.data import load_dataset
from helpers.networks.models import build_model, count_macs_params
from helpers.search.pipeline import Timing, run_plan

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ctx():
    train = load_dataset("fashion_mnist", "train").subset(256, seed=0)
    val = load_dataset("fashion_mnist", "val").subset(128, seed=0)
    return Context(train_ds=train, val_ds=val, input_size=32, in_channels=1)


def _model(name="resnet18", width=0.25):
    torch.manual_seed(0)
    return build_model(name, 10, 1, width).eval()


def _apply(steps, ctx, tmp_path, model=None, **kw):
    plan = CompressionPlan.from_dict({"steps": steps, **kw})
    return run_plan(plan, model or _model(), ctx, tmp_path, Timing(measure=False), val_images=64)


def _checks(result, method):
    return {c["check"]: c for r in result["steps"] if r["method"] == method for c in r["checks"]}


def test_unstructured_sparsity_survives_int8(ctx, tmp_path):
    res = _apply([{"method": "unstructured", "amount": 0.5}, {"method": "ptq", "calibration": 16}], ctx, tmp_path)
    assert abs(weight_sparsity(res["model"]) - 0.5) <= 0.01
    checks = _checks(res, "unstructured")
    assert checks["weight sparsity (PyTorch)"]["status"] == "pass"
    assert checks["zero weights survive export"]["status"] == "pass"
    assert checks["size or speed benefit"]["status"] == "not visible"  # reported as such, never passed
    assert res["full_integer"]


def test_unstructured_zeros_survive_finetuning(ctx, tmp_path):
    res = _apply([{"method": "unstructured", "amount": 0.6, "scope": "layer"},
                  {"method": "finetune", "epochs": 0.5, "batch_size": 64}, {"method": "ptq", "calibration": 8}],
                 ctx, tmp_path)
    assert abs(weight_sparsity(res["model"]) - 0.6) <= 0.01


def test_structured_exact_channels(ctx, tmp_path):
    res = _apply([{"method": "structured", "ratio": 0.5}, {"method": "ptq", "calibration": 8}], ctx, tmp_path)
    m = res["model"]
    assert m.layer1[0].conv1.out_channels == 8 and m.layer1[0].conv2.out_channels == 16  # coupled to the kept stem
    assert m.layer2[0].conv1.out_channels == 16 and m.layer4[1].conv2.out_channels == 64 and m.fc.in_features == 64
    assert m.fc.out_features == 10
    macs0, params0 = count_macs_params(_model(), 32, 1)
    assert res["macs"] < 0.4 * macs0 and res["params"] < 0.35 * params0
    assert all(c["status"] == "pass" for c in _checks(res, "structured").values())
    assert res["full_integer"]


def test_stage_slope_prunes_late_stages_more(ctx, tmp_path):
    from helpers.compress.pruning import slope_ratios, stages

    groups = stages(_model())
    assert slope_ratios(groups, 0.5, 0.3) == pytest.approx({"layer1": 0.2, "layer2": 0.4, "layer3": 0.6, "layer4": 0.8})
    assert slope_ratios(groups, 0.5, 0.0) == {} and slope_ratios(groups, 0.9, 0.3)["layer4"] == 0.95  # clipped
    res = _apply([{"method": "structured", "ratio": 0.5, "stage_slope": 0.3}], ctx, tmp_path, export={"mode": "fp32"})
    m = res["model"]  # x0.25 widths 16/32/64/128 keep 80%, 60%, 40%, 20% (rounded down) of their inner channels
    assert [m.layer1[0].conv1.out_channels, m.layer2[0].conv1.out_channels, m.layer3[0].conv1.out_channels,
            m.layer4[0].conv1.out_channels] == [12, 19, 25, 25]


def test_structured_round_to_and_importances(ctx, tmp_path):
    """Every importance criterion prunes MobileNetV2 to multiples of round_to with fewer MACs (PyTorch checks; one
    of them is exported too, so the artifact's channels are checked against the pruned model's)."""
    for imp in ("l2", "bn_scale", "taylor", "lamp", "random"):
        plan = CompressionPlan.from_dict({"steps": [{"method": "structured", "ratio": 0.3, "importance": imp,
                                                     "round_to": 4}], "export": {"mode": "fp32"}})
        if imp == "lamp":
            res = run_plan(plan, _model("mobilenet_v2", 0.5), ctx, tmp_path / imp, Timing(measure=False), val_images=64)
            records = res["steps"]
            assert _checks(res, "structured")["artifact conv channels equal the pruned model's"]["status"] == "pass"
        else:
            work, records, snaps = plan.run_steps(_model("mobilenet_v2", 0.5), ctx)
            plan.verify_steps(records, snaps, work, ctx, None)
        checks = {c["check"]: c for r in records for c in r["checks"]}
        assert checks["channels multiple of 4"]["status"] == "pass", imp
        assert checks["MACs fall"]["status"] == "pass", imp


def test_lowrank_exact_ranks(ctx, tmp_path):
    res = _apply([{"method": "tucker_conv", "rank_ratio": 0.5, "min_channels": 16},
                  {"method": "svd_linear", "rank_ratio": 0.25, "min_channels": 8}, {"method": "ptq", "calibration": 8}],
                 ctx, tmp_path)
    m = res["model"]
    assert tuple(m.layer4[1].conv2[1].weight.shape[:2]) == (64, 64)  # 128 -> rank 64 on both modes
    assert m.layer1[0].conv1.rank == (8, 8) and m.fc[0].out_features == 2  # fc is 10x128: rank round(0.25 * 10)
    for method in ("tucker_conv", "svd_linear"):
        assert all(c["status"] == "pass" for c in _checks(res, method).values()), method


def test_clustering_at_most_k_values(ctx, tmp_path):
    res = _apply([{"method": "clustering", "clusters": 8}, {"method": "ptq", "calibration": 8}], ctx, tmp_path)
    layer = res["model"].layer2[0].conv1.weight
    assert len(torch.unique(layer)) <= 8
    checks = _checks(res, "clustering")
    assert checks["distinct values per layer (PyTorch)"]["status"] == "pass"
    assert checks["distinct int8 values per output channel"]["status"] == "pass"


def test_qat_gives_full_integer(ctx, tmp_path):
    res = _apply([{"method": "qat", "epochs": 0.2, "calibration": 8}], ctx, tmp_path)
    assert res["full_integer"] and _checks(res, "qat")["full-integer artifact"]["status"] == "pass"
    # the artifact was scored on the validation images asked for (val_images 64), and the record carries what
    # its interval needs
    n = min(64, len(ctx.val_ds))
    assert res["val_n"] == n and res["val_correct"] == round(res["val_accuracy"] * n)


def test_reference_modes(ctx, tmp_path):
    res = _apply([{"method": "fp16"}], ctx, tmp_path / "a")
    assert not res["full_integer"] and _checks(res, "fp16")["FLOAT16 weights"]["status"] == "pass"
    res = _apply([{"method": "dynamic"}], ctx, tmp_path / "b")
    assert _checks(res, "dynamic")["INT8 weights"]["status"] == "pass"


def test_cli_export_and_compress_from_a_checkpoint(tmp_path):
    import json
    import subprocess
    import sys

    from helpers.networks.checkpoints import save_checkpoint

    cfg = {"model": "resnet18", "dataset": "fashion_mnist", "num_classes": 10, "in_channels": 1, "width": 0.25,
           "input_size": 32}
    ckpt = save_checkpoint(_model(), tmp_path / "r.pt", cfg, {})
    out = tmp_path / "m.tflite"
    run = subprocess.run([sys.executable, "-m", "helpers", "export", str(ckpt), "--mode", "int8", "--out", str(out),
                          "--calibration-images", "8"], capture_output=True, text=True)
    assert run.returncode == 0 and "wrote" in run.stdout, run.stderr[-1500:]
    plan = tmp_path / "plan.yaml"
    plan.write_text("steps:\n  - {method: structured, ratio: 0.5}\n  - {method: ptq, calibration: 8}\n")
    run = subprocess.run([sys.executable, "-m", "helpers", "compress", str(plan), "--checkpoint", str(ckpt),
                          "--out", str(tmp_path / "c"), "--json", "--finetune-images", "64", "--val-images", "32"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-1500:]
    rec = json.loads(run.stdout)
    assert rec["full_integer"] and rec["latency"]["median_ms"] > 0 and 0 <= rec["val_accuracy"] <= 1
    assert all(c["status"] == "pass" for c in rec["steps"][0]["checks"])
    plan.write_text("steps:\n  - {method: ptq}\n  - {method: finetune}\n")
    run = subprocess.run([sys.executable, "-m", "helpers", "compress", str(plan), "--checkpoint", str(ckpt),
                          "--out", str(tmp_path / "d")], capture_output=True, text=True)
    assert run.returncode == 2 and "step 1 (ptq), field 'method'" in run.stderr
    assert not (tmp_path / "d").exists()


def test_killing_compress_at_any_moment_leaves_a_whole_pair_or_none(tmp_path):
    """SIGKILL `compress` at several moments of a run over a folder that holds an earlier run's pair: the folder
    always holds both files of one run (the old pair or the new one), never a model without its record."""
    import json
    import signal
    import subprocess
    import sys
    import time

    from helpers.networks.checkpoints import save_checkpoint

    cfg = {"model": "resnet18", "dataset": "fashion_mnist", "num_classes": 10, "in_channels": 1, "width": 0.25,
           "input_size": 32}
    ckpt = save_checkpoint(_model(), tmp_path / "r.pt", cfg, {})
    out = tmp_path / "c"
    cmd = [sys.executable, "-m", "helpers", "compress", str(tmp_path / "plan.yaml"), "--checkpoint", str(ckpt),
           "--out", str(out), "--json", "--finetune-images", "64", "--val-images", "32"]

    def pair_is_whole():
        if not out.exists():
            return None
        names = sorted(p.name for p in out.iterdir())
        assert names == ["model.tflite", "record.json"], names
        rec = json.loads((out / "record.json").read_text())
        return rec["plan"]["steps"][0]["ratio"]

    (tmp_path / "plan.yaml").write_text("steps:\n  - {method: structured, ratio: 0.25}\n  - {method: ptq, calibration: 8}\n")
    t0 = time.perf_counter()
    assert subprocess.run(cmd, capture_output=True, text=True).returncode == 0
    full = time.perf_counter() - t0
    assert pair_is_whole() == 0.25
    (tmp_path / "plan.yaml").write_text("steps:\n  - {method: structured, ratio: 0.5}\n  - {method: ptq, calibration: 8}\n")
    for fraction in (0.5, 0.9, 0.97):  # one mid-run, two late ones inside the writes
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(fraction * full)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert pair_is_whole() in (0.25, 0.5)
    assert subprocess.run(cmd, capture_output=True, text=True).returncode == 0
    assert pair_is_whole() == 0.5
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".c.")]
    assert all(name.endswith((".tmp", ".old")) for name in leftovers)  # a killed run's scratch is hidden, never `c`
