import json

import pandas as pd
import pytest

from helpers.core import paths
from helpers.analysis.verdicts import composition_verdict
from helpers.analysis.findings import layer_findings, pool_findings
from helpers.reports.report import (ANSWER_BEGIN, ANSWER_END, BEGIN, END, RESULTS_PAGE, build_answer, build_report,
                                    readme_section, write_readme)
from helpers.core.stats import difference_noise, group_accuracy, wilson_interval


@pytest.mark.slow  # seconds, not milliseconds: kept out of `make check`
def test_results_page_and_readme_answer_equal_the_report_of_the_committed_tables():
    assert readme_section(RESULTS_PAGE) == build_report("default"), \
        "docs/results.md is stale: run `python -m helpers report --write`"
    assert readme_section(paths.README, ANSWER_BEGIN, ANSWER_END) == build_answer(), \
        "the README's answer is stale: run `python -m helpers report --write`"


def test_readme_is_short_and_leads_with_the_answer():
    """The README a reader gets in five minutes: at most 250 lines of at most 120 characters, the generated answer
    (its word on the hypothesis) within the first 40 lines, and every docs page it points to present."""
    import re

    lines = paths.README.read_text().splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; move detail to docs/"
    long = [i + 1 for i, line in enumerate(lines) if len(line) > 120]
    assert not long, f"README.md lines {long[:5]} exceed 120 characters"
    start = lines.index(ANSWER_BEGIN)
    assert start < 40 and lines[start + 1].startswith("**The hypothesis is "), "the answer must open the README"
    for link in re.findall(r"\]\((docs/[^)#]+)", "\n".join(lines)):
        assert (paths.ROOT / link).exists(), f"README.md links to {link}, which is missing"


def test_the_hypothesis_word_follows_its_rule():
    """The rule, row by row: every part holds -> supported; GP wins nowhere and 08's targets nowhere -> not
    supported; anything between -> partly; a missing table or 08 -> not answered yet."""
    from helpers.analysis.answer import COLUMNS, SPEED_CLAIM, hypothesis

    def rows(gp, speed, targets):
        r = [["table gp vs random", f"d{i}", "", "", "m", h] for i, h in enumerate(gp)]
        r += [[SPEED_CLAIM, f"d{i}", "", "", "m", h] for i, h in enumerate(speed)]
        r += [["08's targets", f"d{i}", "", "", "m", h] for i, h in enumerate(targets)]
        return pd.DataFrame(r, columns=COLUMNS)

    assert hypothesis(rows([True, True], [True, True], [True])) == "supported"
    assert hypothesis(rows([True, True], [False, True], [True])) == "partly supported"
    assert hypothesis(rows([True, False], [True, True], [True])) == "partly supported"
    assert hypothesis(rows([False, False], [True, True], [False, False])) == "not supported"
    assert hypothesis(rows([False, False], [False], [True, False])) == "partly supported"
    assert hypothesis(rows([], [True], [True])) == "not answered yet"


def test_the_answer_rows_are_the_committed_verdicts():
    """Each table row of the answer is the registered primary comparison's verdict in the committed CSV, and the
    answer's word is the rule applied to the rows it prints."""
    from helpers.analysis.answer import claims, hypothesis

    rows = claims()
    table = rows[rows.claim.str.startswith("table ")]
    for csv in sorted(paths.RESULTS.glob("study/*/*/*-verdicts.csv")):
        v = pd.read_csv(csv)
        for r in v[v.budget == 20].itertuples():
            got = table[(table.dataset == r.dataset) & (table.claim == f"table {r.first} vs {r.second}")]
            assert len(got) == 1 and got.finding.iloc[0] == r.verdict.split(" (")[0], (csv, r.first, r.second)
    assert f"**The hypothesis is {hypothesis(rows)}**" in build_answer()


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
                  "mac_speedup": [2.0, 1.5, 1.0], "val_accuracy": 0.90, "val_accuracy_lo": 0.89,
                  "val_accuracy_hi": 0.91, "accuracy_change": 0.0}).to_csv(d / "pool.csv", index=False)


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
    assert t.set_index("group")["accuracy"].to_dict() == {"x": 1.0, "y": 0.0}


def test_composition_verdict_judges_only_beyond_noise():
    assert composition_verdict(1.9, -1.0, 2.0, -0.5, 0.02, 1.0) == "adds up"
    assert composition_verdict(1.5, -1.0, 2.0, -0.5, 0.02, 1.0) == "interferes (speed)"
    assert composition_verdict(2.0, -3.0, 2.0, -0.5, 0.02, 1.0) == "interferes (accuracy)"


def test_findings_follow_the_numbers():
    pool = pd.DataFrame({"model": "m", "dataset": "d", "mode": "int8", "label": ["int8", "p", "u"],
                         "speedup": [1.0, 1.3, 1.01], "mac_speedup": [1.0, 1.8, 1.0], "latency_ms": 1.0,
                         "latency_iqr_ms": 0.01})
    text = pool_findings(pool)
    assert "less than its MACs predict" in text[0] and "does not pay" in text[1]
    share = pd.DataFrame({"model": "m", "block": ["a", "b"], "share": [0.7, 0.3], "macs_share": [0.3, 0.7]})
    assert "1 of 2 blocks" in layer_findings(share)[1] and ": a." in layer_findings(share)[1]


def test_o8_verdict_says_by_how_much_it_misses():
    from helpers.analysis.verdicts import o8_verdict

    assert o8_verdict(0.900, 0.905, 1.0, 2.5, 6.0)["met"]
    v = o8_verdict(0.880, 0.905, 1.0, 1.5, 6.0)
    assert not v["met"] and "1.50 points under the bar" in v["text"] and "1.50x vs plain int8" in v["text"]


def test_one_method_per_sub_domain_within_the_budget():
    from helpers.analysis.verdicts import choose_per_sub_domain

    pool = pd.DataFrame({"model": "m", "dataset": "d", "category": ["structured", "structured", "clustering"],
                         "label": ["structured 0.3", "structured 0.6", "clustering 16"], "speedup": [1.3, 2.2, 1.0],
                         "accuracy_change": [-0.005, -0.05, -0.001]})
    c = choose_per_sub_domain(pool, 1.0).set_index("sub_domain")
    assert c.loc["structured pruning", "chosen"] == "structured 0.3" and c.loc["structured pruning", "within_budget"]
    c = choose_per_sub_domain(pool, 10.0).set_index("sub_domain")
    assert c.loc["structured pruning", "chosen"] == "structured 0.6"
    # none within 0.1 points: the most accurate is shown and marked, as 03's prose says (not the fastest)
    c = choose_per_sub_domain(pool, 0.1).set_index("sub_domain")
    assert c.loc["structured pruning", "chosen"] == "structured 0.3"
    assert not c.loc["structured pruning", "within_budget"]
    import nbformat

    prose = "\n".join(c.source for c in nbformat.read(paths.NOTEBOOKS / "03_compression_pool.ipynb", 4).cells
                      if c.cell_type == "markdown")
    assert "most\naccurate is shown and marked" in prose or "most accurate is shown and marked" in prose, \
        "03's prose no longer states the rule this test checks: change both together"


def test_missing_search_space_is_named(tmp_path):
    from helpers.experiments.search_space import read_space, write_space

    with pytest.raises(FileNotFoundError, match="run notebook 06 first"):
        read_space(tmp_path / "search_space.yaml")
    write_space(tmp_path / "s.yaml", {"steps": [{"method": "structured", "ratio": {"low": 0.2, "high": 0.5}},
                                               {"method": "ptq"}], "screening": {"slack_points": {"d": 1.0}},
                                     "run_record": "abc"})
    template, screening, record = read_space(tmp_path / "s.yaml")
    assert [f["name"] for f in template.free_parameters()] == ["0.structured.ratio"] and record == "abc"
    assert screening == {"slack_points": {"d": 1.0}}


def test_compress_imports_nothing_from_export_latency_runtime():
    import ast

    from helpers.core.identity import module_file

    banned = {"export", "latency", "runtime"}
    for f in (paths.ROOT / "helpers" / "compress").glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                taken = {node.module.split(".")[-1]} | ({a.name for a in node.names} if node.module == "helpers.deploy"
                                                         else set())
                assert not taken & banned, f"{f.name}: {node.module}"
    for name in ("latency", "lut"):
        assert "checkpoints" not in module_file(name).read_text()


def test_export_spec_comes_from_the_quantisation_step():
    from helpers.compress.plan import CompressionPlan

    spec = CompressionPlan.from_dict({"steps": [{"method": "ptq", "calibration": 32, "per_channel": False}]}).export_spec()
    assert spec == {"mode": "int8", "per_channel": False, "calibration": 32}
    assert CompressionPlan.from_dict({"steps": [{"method": "fp16"}]}).export_spec() == {"mode": "fp16"}
    fp32 = CompressionPlan.from_dict({"steps": [{"method": "finetune", "epochs": 0}], "export": {"mode": "fp32"}})
    assert fp32.export_spec()["mode"] == "fp32"


def test_report_flags_tables_of_another_run(tmp_path):
    _machine(tmp_path, "m1", "2026-01-01", 0.2, ["a", "b", "int8"])
    folder = tmp_path / "default" / "m1"
    assert "pool (no run record)" in build_report("default", root=tmp_path)
    for t in folder.glob("*.csv"):
        pd.read_csv(t).assign(run_record="m1").to_csv(t, index=False)
    assert "Warning" not in build_report("default", root=tmp_path)
    pd.read_csv(folder / "pool.csv").assign(run_record="other").to_csv(folder / "pool.csv", index=False)
    assert "pool (other)" in build_report("default", root=tmp_path)


def test_generated_folders_do_not_make_the_tree_dirty(monkeypatch, tmp_path):
    import subprocess

    from helpers.records import provenance

    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
           "PATH": "/usr/bin:/bin"}
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "f.png").write_text("a")
    (tmp_path / "code.py").write_text("a")
    subprocess.run(["git", "-C", str(tmp_path), "add", "."], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "commit", "-qm", "x"], check=True, env=env)
    monkeypatch.setattr(paths, "ROOT", tmp_path)
    (tmp_path / "figures" / "f.png").write_text("b")  # a run rewrote a committed figure
    assert provenance.git_state()["dirty"] is False
    (tmp_path / "code.py").write_text("b")
    assert provenance.git_state()["dirty"] is True


def test_every_benchmark_target_has_a_reference_row_and_is_judged_both_ways():
    import re

    from helpers.core.benchmarks import judge

    for script in (paths.ROOT / "benchmarks").glob("bench_*.py"):
        for bench, metric in re.findall(r"judge\(\s*['\"](\w+)['\"],\s*['\"]([^'\"]+)['\"]", script.read_text()):
            assert bench == script.stem, f"{script.name} judges {bench}"
            judge(bench, metric, 1.0)  # raises KeyError when the reference row is missing
    assert judge("bench_repeatability", "max-min spread of the median (fraction)", 0.02).endswith("met)")
    assert "missed by 0.02" in judge("bench_repeatability", "max-min spread of the median (fraction)", 0.05)
    assert judge("bench_runtimes", "resnet18 x0.25 int8 speed-up over LiteRT fp32 (x)", 1.85).endswith("met)")  # tolerance
    with pytest.raises(KeyError, match="add one to"):
        judge("bench_runtimes", "no such metric", 1.0)


def test_a_missed_benchmark_target_makes_the_script_fail(monkeypatch):
    from helpers.core import benchmarks

    monkeypatch.setattr(benchmarks, "MISSED", [])
    metric = "max-min spread of the median (fraction)"
    target = benchmarks.reference("bench_repeatability", metric)["target"]
    assert "met" in benchmarks.judge("bench_repeatability", metric, target / 2) and benchmarks.exit_status() == 0
    assert "missed by" in benchmarks.judge("bench_repeatability", metric, target * 3)
    assert benchmarks.exit_status() == 1


def test_the_o8_verdict_compares_the_test_bar_as_counts():
    from helpers.analysis.verdicts import o8_verdict

    fp32 = 0.9088000059127808  # float32 of 9088/10000; the bar is 8988 of 10000
    assert not o8_verdict(0.8988, fp32, 1.0, 2.5, 6.0)["accuracy_met"]  # floats: 1e-9 under, a miss
    assert o8_verdict(0.8988, fp32, 1.0, 2.5, 6.0, test_n=10_000)["accuracy_met"]
    assert not o8_verdict(0.8987, fp32, 1.0, 2.5, 6.0, test_n=10_000)["accuracy_met"]
