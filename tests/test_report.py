import json

import pandas as pd
import pytest

from helpers import paths
from helpers.experiments import composition_verdict, judge_parameters
from helpers.findings import layer_findings, pool_findings
from helpers.report import BEGIN, END, build_report, readme_section, write_readme
from helpers.stats import difference_noise, group_accuracy, wilson_interval


def test_readme_results_equal_the_report_of_the_committed_tables():
    assert readme_section(paths.ROOT / "README.md") == build_report("default"), \
        "README's results section is stale: run `python -m helpers report --write`"


def _machine(root, name, created, int8_ms, ranking):
    d = root / "default" / name
    d.mkdir(parents=True)
    rec = {"id": name, "created": created, "git": {"commit": "a" * 40, "dirty": False}, "datasets": {"glyphs": "f"},
           "machine": {"id": name, "cpu": "cpu", "cores": 2, "mhz": 2000, "flags": ["avx2"]},
           "characterisation": {"int8_ms": int8_ms, "fp32_ms": 3 * int8_ms, "int8_speedup": 3.0, "int8_speedup_iqr": 0.1}}
    (d / "run_record.json").write_text(json.dumps(rec))
    pd.DataFrame({"model": "resnet18", "backend": ["LiteRT int8"], "median_ms": [int8_ms], "iqr_ms": [0.001],
                  "ratio_to_int8": [1.0]}).to_csv(d / "latency_end_to_end.csv", index=False)
    pd.DataFrame({"model": "resnet18", "dataset": "fashion_mnist", "mode": "int8", "label": ranking,
                  "latency_ms": [0.1, 0.2, 0.3], "latency_iqr_ms": 0.001, "speedup": [3.0, 1.5, 1.0],
                  "mac_speedup": [2.0, 1.5, 1.0], "val_acc_%": 90.0, "val_acc_%_lo": 89.0, "val_acc_%_hi": 91.0,
                  "acc_change": 0.0}).to_csv(d / "pool.csv", index=False)


def test_report_puts_two_machines_side_by_side(tmp_path):
    _machine(tmp_path, "m1", "2026-01-01", 0.2, ["a", "b", "int8"])
    _machine(tmp_path, "m2", "2026-01-02", 0.7, ["b", "a", "int8"])
    text = build_report("default", root=tmp_path)
    assert "### Machine `m1`" in text and "### Machine `m2`" in text
    assert "| resnet18 LiteRT int8 (ms) | 0.2 | 0.7 |" in text
    assert "DIFFERS between machines" in text
    readme = tmp_path / "README.md"
    readme.write_text(f"head\n{BEGIN}\nold\n{END}\ntail\n")
    write_readme(readme, text)
    assert readme_section(readme) == text and readme.read_text().endswith("tail\n")


def test_no_results_says_how_to_make_them(tmp_path):
    assert "make run" in build_report("default", root=tmp_path)


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-4) and hi == pytest.approx(0.5962, abs=1e-4)
    assert wilson_interval(0, 10)[0] == pytest.approx(0.0, abs=1e-12) and wilson_interval(10, 10)[1] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="correct"):
        wilson_interval(11, 10)
    assert difference_noise(0.9, 2000) == pytest.approx(0.0186, abs=1e-4)


def test_group_accuracy_per_design():
    t = group_accuracy([0, 1, 1, 1], [0, 1, 0, 0], [0, 0, 1, 1], ["x", "y"])
    assert t.set_index("group")["acc_%"].to_dict() == {"x": 100.0, "y": 0.0}


def test_composition_verdict_judges_only_beyond_noise():
    assert composition_verdict(1.9, -1.0, 2.0, -0.5, 0.02, 1.0) == "adds up"
    assert composition_verdict(1.5, -1.0, 2.0, -0.5, 0.02, 1.0) == "interferes (speed)"
    assert composition_verdict(2.0, -3.0, 2.0, -0.5, 0.02, 1.0) == "interferes (accuracy)"


def test_parameter_inside_the_noise_is_not_searched():
    sens = pd.DataFrame({"parameter": ["(default)", "ratio", "ratio", "slope"], "latency_ms": [1.0, 0.8, 1.2, 1.0],
                         "val_acc_%": [90.0, 88.0, 92.0, 90.8]})
    assert judge_parameters(sens, noise=0.0).loc["slope", "optimise"]
    j = judge_parameters(sens, noise=1.5).loc["slope"]
    assert not j.optimise and j.verdict == "not distinguishable"


def test_findings_follow_the_numbers():
    pool = pd.DataFrame({"model": "m", "dataset": "d", "mode": "int8", "label": ["int8", "p", "u"],
                         "speedup": [1.0, 1.3, 1.01], "mac_speedup": [1.0, 1.8, 1.0], "latency_ms": 1.0,
                         "latency_iqr_ms": 0.01})
    text = pool_findings(pool)
    assert "less than its MACs predict" in text[0] and "does not pay" in text[1]
    share = pd.DataFrame({"model": "m", "block": ["a", "b"], "share": [0.7, 0.3], "macs_share": [0.3, 0.7]})
    assert "1 of 2 blocks" in layer_findings(share)[1] and ": a." in layer_findings(share)[1]
