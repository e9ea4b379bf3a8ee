"""The tabular benchmark (helpers.experiments.table*, helpers.experiments.replay): config checks, optimisers replayed on a synthetic table,
the paired comparison, and a smoke-sized table built, replayed and refused on bad input end to end."""

import json
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
import yaml

from helpers.core import paths
from helpers.search.objective import Objective
from helpers.experiments.replay import TableSearch, replay
from helpers.experiments.table_config import Lattice, load_table_config

SMOKE = paths.PARAMS / "tables" / "smoke.yaml"
FULL = paths.PARAMS / "tables" / "o8-table.yaml"


def _config(tmp_path, **changes):
    raw = {**yaml.safe_load(SMOKE.read_text()), **changes}
    path = tmp_path / "table.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("changes,answer", [
    ({"optimisers": ["gp", "bayes"]}, "optimiser 'bayes' is not one of"),
    ({"budgets": [2, 9]}, "budget 9 is not a number of trials between 1 and the space's 2 networks"),
    ({"space": {"layer1": [8], "layer2": [12], "layer3": [64], "layer4": [128]}}, "not multiples of round_to 8"),
    ({"space": {"layer1": [8], "layer2": [16]}}, "layer1, layer2, layer3 and layer4"),
    ({"architecture": "mobilenet_v2"}, "use resnet18"),
    ({"datasets": ["mnist"]}, "'mnist' is not a dataset"),
    ({"analysis": {"interval": 1.5, "equivalence_margin": 0.03}}, "interval 1.5"),
    ({"threshold": -1}, "threshold -1"),
    ({"budgetz": 3}, "unknown field 'budgetz'"),
])
def test_bad_table_configs_are_answered_in_one_sentence(tmp_path, changes, answer):
    with pytest.raises(ValueError, match=answer):
        load_table_config(_config(tmp_path, **changes))


def test_the_registered_space_holds_the_controls_uniform_widths():
    from helpers.networks.models import uniform_channels

    cfg = load_table_config(FULL)
    nets = set(cfg.lattice().networks())
    assert len(nets) >= 250 and len(nets) == len(cfg.lattice())
    for f in cfg.uniform:
        assert tuple(uniform_channels([16, 32, 64, 128], f, cfg.round_to)) in nets


def _synthetic(seed=0):
    lat = Lattice({"layer1": [8, 16], "layer2": [8, 16, 24], "layer3": [16, 32, 48], "layer4": [32, 64]})
    rng = np.random.default_rng(seed)
    out = {}
    for n in lat.networks():
        w = np.log(n)
        out[n] = {"val_correct": int(900 + 12 * w @ [1, 2, 1, 0.5] + rng.normal(0, 3)), "val_n": 2000,
                  "latency_ms": float(0.02 * np.exp(w @ [0.3, 0.2, 0.1, 0.05]))}
    counts = sorted(o["val_correct"] for o in out.values())
    bar = Fraction(counts[len(counts) // 2], 2000)
    return TableSearch(out, lat, bar, Objective("constrained", float(bar) + 0.01, 1.0, 0.1))


@pytest.mark.parametrize("optimiser", ["random", "gp", "gp-objective", "tpe", "greedy"])
def test_each_optimiser_spends_its_budget_on_distinct_networks_and_replays_the_same(optimiser):
    space = _synthetic()
    a = replay(space, optimiser, 3, 8, n_initial=3)
    b = replay(space, optimiser, 3, 8, n_initial=3)
    assert [t["network"] for t in a] == [t["network"] for t in b]  # a replay is a pure function of table and seed
    assert len({t["network"] for t in a}) == len(a) <= 8
    best = space.best_latency()
    finite = [t["best_ms"] for t in a if t["best_ms"] == t["best_ms"]]
    assert all(x >= best for x in finite) and finite == sorted(finite, reverse=True)  # best so far never worsens
    if optimiser != "greedy":
        assert len(a) == 8


@pytest.mark.slow  # seconds, not milliseconds: kept out of `make check`
def test_the_gp_never_proposes_a_network_it_has_measured():
    """Its acquisition runs over the networks not yet measured: each ask is a new trial, to the whole space, then it
    stops (snapped continuous candidates kept proposing measured networks, each proposal costing two GP fits)."""
    space = _synthetic()
    trials = replay(space, "gp", 0, len(space.lattice), n_initial=3)
    assert [t["asks"] for t in trials] == list(range(1, len(space.lattice) + 1))


def test_greedy_starts_wide_and_only_narrows():
    space = _synthetic()
    trials = replay(space, "greedy", 0, 18)
    assert trials[0]["network"] == Lattice.key(space.lattice.widest())
    widths = [sum(Lattice.parse_key(t["network"])) for t in trials]
    assert widths[0] == max(widths)


def test_random_search_over_the_whole_space_finds_the_best():
    space = _synthetic()
    trials = replay(space, "random", 1, len(space.lattice))
    assert trials[-1]["best_ms"] == pytest.approx(space.best_latency())


def test_a_dataset_outside_the_config_is_refused_before_anything_is_built(tmp_path):
    from helpers.experiments.table import build_table, table_dir

    cfg = load_table_config(_config(tmp_path, name="refused"))
    with pytest.raises(ValueError, match="dataset 'glyphs' is not in the table's config .its datasets: fashion_mnist"):
        build_table(cfg, datasets=["glyphs"], progress=False)
    assert not table_dir(cfg, "any").parent.exists()  # no table folder made


def test_a_run_that_replaces_the_folders_run_record_keeps_the_old_one(tmp_path, monkeypatch):
    """A build or a live check under new code writes its own run_record.json; the record the earlier rows name is
    kept in run_records/ first (a live check once replaced it without keeping it)."""
    from helpers.search.store import TableLayout

    layout = TableLayout(tmp_path / "m-2c-000000")
    layout.folder.mkdir()
    layout.run_record.write_text(json.dumps({"id": "old000000000"}))
    monkeypatch.setattr("helpers.records.provenance.current_record", lambda profile: {"id": "new000000000"})
    assert layout.current_record("study/records")["id"] == "new000000000"
    assert json.loads(layout.earlier_record("old000000000").read_text()) == {"id": "old000000000"}
    layout.earlier_record("old000000000").unlink()
    layout.run_record.write_text(json.dumps({"id": "new000000000"}))
    layout.current_record("study/records")  # the same record: nothing to keep
    assert not layout.earlier_record("new000000000").exists() and not layout.earlier_record("old000000000").exists()


def test_bad_replays_are_refused():
    space = _synthetic()
    with pytest.raises(ValueError, match="not one of"):
        replay(space, "anneal", 0, 5)
    with pytest.raises(ValueError, match="between 1 and the space's 36 networks"):
        replay(space, "random", 0, 37)


def test_the_paired_comparison_tells_better_equivalent_and_not_shown_apart():
    from helpers.analysis.table_analysis import compare

    rng = np.random.default_rng(0)
    b = 1 + rng.random(50)
    better = compare(b * 0.8, b, True, 0.9, 0.03, 0.05)
    assert better["verdict"] == "first better" and better["hi"] < 1 and better["p"] < 0.05
    same = compare(b, b, True, 0.9, 0.03, 0.05)
    assert same["verdict"].startswith("equivalent") and same["p"] == 1.0
    # most seeds tie (both found the best) and the rest favour the first: the median ratio is 1, the first is better
    found = np.ones(50)
    tied = compare(found, np.r_[np.ones(30), 1 + rng.uniform(0.01, 0.2, 20)], False, 0.9, 0.03, 0.05)
    assert tied["median_ratio"] == 1.0 and tied["p"] < 0.05 and tied["verdict"] == "first better"
    tied = compare(np.r_[np.ones(30), 1 + rng.uniform(0.01, 0.2, 20)], found, False, 0.9, 0.03, 0.05)
    assert tied["verdict"] == "second better"
    noisy = compare(b * np.exp(rng.normal(0, 0.3, 50)), b, False, 0.9, 0.03, 0.05)
    assert noisy["verdict"] in ("no difference shown (not equivalent either)", "first better", "second better")
    assert not noisy["equivalent"]


@pytest.mark.slow
def test_a_smoke_table_is_built_resumed_replayed_and_guarded(tmp_path, monkeypatch):
    """The whole path on the smoke profile: build (2 pruned networks, Scratch-B, a second seed), a second call that
    measures nothing, the replay with its verdicts, and the CLI's refusals (exit 2, one sentence)."""
    from helpers.core.identity import machine
    from helpers.experiments.table import build_table, table_dir, table_frame
    from helpers.analysis.table_analysis import table_search
    from helpers.reports.table_report import run_replays

    cfg = load_table_config(SMOKE)
    folder = table_dir(cfg, machine()["id"])
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
    build_table(cfg, resume=False, progress=False, log=lambda *_: None)
    df = table_frame(folder, "fashion_mnist")
    inherit = df[df.kind == "inherit"]
    assert sorted(inherit.network) == sorted(Lattice.key(n) for n in cfg.lattice().networks())
    assert (df.kind == "scratch").sum() >= 1 and (df.kind == "seed1").sum() == 1
    assert all(inherit.full_integer) and (inherit.val_n == 128).all() and (inherit.test_n == 256).all()
    assert (df.val_correct <= df.val_n).all() and (df.latency_ms > 0).all()
    timed = [json.loads(x) for x in (folder / "fashion_mnist-latency.jsonl").read_text().splitlines()]
    assert sorted(r["network"] for r in timed) == sorted(inherit.network)  # every network re-timed, once
    assert (0.5 < inherit.latency_ms / inherit.built_latency_ms).all() and (inherit.latency_ms / inherit.built_latency_ms < 2).all()
    assert not any(str(a).startswith("/") for a in df.artifact)  # portable paths
    ref = json.loads((folder / "fashion_mnist-reference.json").read_text())
    assert ref["val_n"] == 128 and 0 < ref["matched_val_correct"] <= 128

    lines = len((folder / "fashion_mnist-table.jsonl").read_text().splitlines())
    build_table(cfg, resume=True, progress=False, log=lambda *_: None,  # everything measured: nothing runs again
                datasets=["fashion_mnist"])
    assert len((folder / "fashion_mnist-table.jsonl").read_text().splitlines()) == lines
    with pytest.raises(ValueError, match="pass --resume"):
        build_table(cfg, resume=False, progress=False)

    out = run_replays(cfg)
    assert any("fastest network that clears the bar" in x for x in out)
    v = (folder / "fashion_mnist-verdicts.csv").read_text()
    assert "gp,random" in v and "tpe,random" in v
    for name in ("table_regret", "table_front"):
        assert (folder / "figures" / f"fashion_mnist-{name}.png").stat().st_size > 1000
    space, _ = table_search(cfg, folder, "fashion_mnist")
    assert space.best_latency() > 0
    from helpers.reports.table_report import run_live_check

    out = run_live_check(cfg, progress=False)  # GP and random, 2 seeds each, every network built again now
    import pandas as pd

    check = pd.read_csv(folder / "fashion_mnist-live-check.csv")
    assert len(check) == 4 and check.same_counts.all()  # training is deterministic: the same images right
    assert "live and replayed searches agree" in out[-1]
    from helpers.reports.table_report import table_section

    text = "\n".join(table_section(folder))  # the README's findings: seed noise, verdicts with W, answer, live check
    assert "fine-tuned again with training seed 1" in text and "Wilcoxon signed-rank W and p" in text
    assert "fastest pruned network that clears the bar" in text or "no pruned network of the table clears" in text
    assert "fashion_mnist, live check (gp, random, seeds 0, 1" in text

    # the same table continued on another machine: its rows count there, the bar carries over, latency is re-timed
    other, real = "other-2c-000000", machine()
    there = table_dir(cfg, other)
    shutil.rmtree(there, ignore_errors=True)
    monkeypatch.setattr("helpers.core.identity.machine", lambda: {**real, "id": other})
    try:
        with pytest.raises(ValueError, match=f"rows measured on {folder.name}; pass --resume"):
            build_table(cfg, resume=False, progress=False)
        build_table(cfg, resume=True, stages=("inherit", "retime"), progress=False, log=lambda *_: None)
        assert not (there / "fashion_mnist-table.jsonl").exists()  # nothing fine-tuned again
        moved = json.loads((there / "fashion_mnist-reference.json").read_text())
        assert moved["matched_val_correct"] == ref["matched_val_correct"] and moved["bar_from"] == folder.name
        b, a = table_frame(there, "fashion_mnist"), table_frame(folder, "fashion_mnist")
        assert set(b.machine) == {folder.name} and b.latency_ms.notna().all()
        assert b.val_correct.tolist() == a.val_correct.tolist() and b.network.tolist() == a.network.tolist()
        assert table_search(cfg, there, "fashion_mnist")[0].best_latency() > 0
        (there / "fashion_mnist-latency.jsonl").unlink()
        with pytest.raises(ValueError, match="no latency measured on other-2c-000000.*--stage retime"):
            table_search(cfg, there, "fashion_mnist")
    finally:
        monkeypatch.undo()
        shutil.rmtree(there, ignore_errors=True)

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "helpers", *args], capture_output=True, text=True,
                              cwd=paths.ROOT, timeout=300)

    r = cli("replay", str(SMOKE), "--machine", "elsewhere-2c-000000")
    assert r.returncode == 2 and "has not been measured on elsewhere-2c-000000" in r.stderr
    r = cli("replay", str(SMOKE), "--optimisers", "anneal")
    assert r.returncode == 2 and "optimiser 'anneal'" in r.stderr
    changed = _config(tmp_path, threshold=4.0)  # same name, another config: its table is not this one
    r = cli("replay", str(changed))
    assert r.returncode == 2 and "another config" in r.stderr
    r = cli("table", str(changed), "--resume")
    assert r.returncode == 2 and "another config" in r.stderr


def test_the_findings_give_the_seed_noise_and_the_answer_against_the_uniform_widths(tmp_path):
    """The README's findings on a hand-made table folder: training-seed noise and flips across the bar, and the
    fastest pruned network that clears the bar against the uniform widths from scratch, with test counts."""
    from dataclasses import asdict

    from helpers.reports.table_report import table_section
    from helpers.search.store import TableLayout, append_log

    space = {"layer1": [8, 16], "layer2": [16, 32], "layer3": [32, 64], "layer4": [64, 128]}
    cfg = load_table_config(_config(tmp_path, space=space, uniform=[0.5], threshold=1.0))
    layout = TableLayout(tmp_path / "study" / cfg.name / "m-2c-000000")
    layout.folder.mkdir(parents=True)
    layout.meta.write_text(json.dumps({"key": cfg.key(), "config": asdict(cfg)}))
    ds = "fashion_mnist"
    layout.reference(ds).write_text(json.dumps({"matched_val_correct": 900, "val_n": 1000, "int8_latency_ms": 1.0}))
    # the bar: 89% (890 of 1000); accuracy and latency grow with the channel count
    for i, n in enumerate(cfg.lattice().networks()):
        width = sum(n) / 240  # 0.5 .. 1
        row = {"trial": i, "values": {"channels": list(n)}, "network": Lattice.key(n), "status": "ok", "val_n": 1000,
               "test_n": 2000, "seconds": 1.0}
        append_log(layout.rows(ds), {**row, "kind": "inherit", "val_correct": int(820 + 100 * width),
                                     "test_correct": int(1640 + 200 * width)})
        append_log(layout.latencies(ds), {"trial": i, "values": {"channels": list(n)}, "network": Lattice.key(n),
                                          "status": "ok", "latency_ms": width,
                                          "ratio": width, "latency_iqr_ms": 0.01, "seconds": 1.0})
    for key, val in (("8-16-32-64", 895), ("16-32-64-128", 925)):  # seed 1: one of them crosses the bar
        append_log(layout.rows(ds), {"trial": 20, "values": {"channels": list(Lattice.parse_key(key))},
                                     "network": key, "status": "ok", "kind": "seed1", "val_correct": val,
                                     "val_n": 1000, "test_correct": 1700, "test_n": 2000, "seconds": 1.0})
    text = "\n".join(table_section(layout.folder))
    assert "2 networks fine-tuned again with training seed 1" in text and "1 of them changed side of the bar" in text
    # no Scratch-B yet: the answer names the fastest pruned network and says no uniform width is measured
    fastest = min((n for n in cfg.lattice().networks() if int(820 + 100 * sum(n) / 240) >= 890), key=sum)
    assert f"`{Lattice.key(fastest)}`" in text and "no uniform width has been trained from scratch yet" in text
    append_log(layout.rows(ds), {"trial": 22, "values": {"channels": [8, 16, 32, 64]}, "network": "8-16-32-64",
                                 "status": "ok", "kind": "scratch", "val_correct": 895,
                                 "val_n": 1000, "test_correct": 1790, "test_n": 2000, "seconds": 2.0})
    text = "\n".join(table_section(layout.folder))
    assert "| uniform x0.5 from scratch | `8-16-32-64` |" in text
    assert f"the fastest pruned network that clears the bar, `{Lattice.key(fastest)}`" in text
    assert "the uniform width is 1.40x faster" in text  # the narrow network from scratch wins here
    # inherit or retrain: 8-16-32-64 is the fastest network, so on the front; from scratch 50 test images more
    assert ("of the 1 networks trained both ways (1 on the front, 0 uniform widths, 0 drawn at random from the space), "
            "from scratch scored higher on test in 1 of 1 (median +50 images of 2,000; Wilcoxon signed-rank p n/a) and "
            "on validation in 1; 0 clear the bar inherited, 1 from scratch.") in text
    assert "no verdict yet" in text
    # a second machine that built rows but re-timed nothing: its section points to this one instead of repeating it
    other = TableLayout(layout.folder.parent / "m-2c-111111")
    other.folder.mkdir()
    other.meta.write_text(layout.meta.read_text())
    append_log(other.rows(ds), {"trial": 0, "values": {"channels": [8, 16, 32, 64]}, "network": "8-16-32-64",
                                "status": "ok", "kind": "seed1", "val_correct": 880, "val_n": 1000,
                                "test_correct": 1700, "test_n": 2000, "seconds": 1.0})
    there = "\n".join(table_section(other.folder))
    assert "the findings of these rows are in the section of `m-2c-000000`" in there
    assert "training seed 1" not in there and "training seed 1" in "\n".join(table_section(layout.folder))


def test_the_committed_verdicts_come_back_when_nothing_is_redrawn():
    """The redraw re-scores the committed replays' paths: with no spread it must give every registered verdict at the
    primary budget in every draw (the re-scoring is the registered computation); with the measured spread the tallies
    add up to the draws."""
    from helpers.analysis.table_analysis import redraw_verdicts, seed_noise, table_bar
    from helpers.experiments.table_config import TableConfig
    from helpers.search.store import TableLayout

    layout = next(x for x in TableLayout.committed(paths.RESULTS / "study") if x.replay("glyphs").exists())
    cfg = TableConfig(**json.loads(layout.meta.read_text())["config"])
    ref = json.loads(layout.reference("glyphs").read_text())
    bar = table_bar(cfg, ref)
    exact = redraw_verdicts(cfg, layout.folder, "glyphs", bar, 0.0, ref["int8_latency_ms"], draws=3)
    assert len(exact) == 3 and (exact.same == exact.draws).all() and (exact.draws == 3).all(), exact
    sd = seed_noise(layout.folder, "glyphs", bar)["run_sd_correct"]
    noisy = redraw_verdicts(cfg, layout.folder, "glyphs", bar, sd, ref["int8_latency_ms"], draws=20)
    for r in noisy.itertuples():
        assert sum(int(part.rsplit(" ", 1)[1]) for part in r.tally.split("; ")) == r.draws == 20


def test_a_redraw_without_a_table_there_is_one_sentence(capsys):
    from helpers.cli import main

    assert main(["replay", "params/tables/o8-table.yaml", "--redraw", "5", "--machine", "no-such-machine"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "no-such-machine" in err and err.count("\n") == 0, err
    assert not (paths.RESULTS / "study" / "o8-table" / "no-such-machine").exists()
