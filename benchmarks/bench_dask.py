"""A small study on 1 and on 2 local Dask workers (wall time), and the latency ratio of one artifact on each worker.

The study is params/studies/smoke.yaml (smoke baselines, 2 seeds x GP and random search, a few trials each),
run fresh into runs/smoke/study/ under two names. Then one plan artifact of that run is timed against the
plain int8 reference on each worker in turn (alternating blocks, as every trial is); the two workers' ratios
should agree within 3% for latency measured on different workers to be comparable.

    .venv/bin/python benchmarks/bench_dask.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from helpers.core import paths
from helpers.core.benchmarks import exit_status, judge
from helpers.search.cluster import executor_for
from helpers.experiments.study import run_study
from helpers.experiments.study_config import load_study


def paired_ratio(artifact: str, reference: str) -> float:
    from helpers.deploy.latency import measure_tflite_paired

    return measure_tflite_paired(artifact, reference, 1).ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="paired measurements per worker")
    args = parser.parse_args()
    raw = yaml.safe_load((paths.PARAMS / "studies" / "smoke.yaml").read_text())
    walls, folder = {}, None
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1, 2):
            name = f"bench-dask-{n}w"
            shutil.rmtree(paths.RUNS / "smoke" / "study" / name, ignore_errors=True)
            cfg_path = Path(tmp) / f"{name}.yaml"
            cfg_path.write_text(yaml.safe_dump({**raw, "name": name}))
            cfg = load_study(cfg_path)
            with executor_for(workers=n) as client:
                t0 = time.perf_counter()
                chosen, folder = run_study(cfg, progress=False, log=lambda *_: None, executor=client)
                walls[n] = time.perf_counter() - t0
                if n == 2:
                    ref = json_reference(folder)
                    artifact = next(a for a in chosen.get("artifact", []) if isinstance(a, str))
                    ratios = {w: [client.submit(paired_ratio, artifact, ref, workers=[w], pure=False).result()
                                  for _ in range(args.repeats)] for w in client.scheduler_info()["workers"]}
    print(f"smoke study ({len(raw['seeds'])} seeds x {len(raw['methods'])} methods, budget {raw['budget']}): "
          f"1 worker {walls[1]:.0f} s, 2 workers {walls[2]:.0f} s ({walls[1] / walls[2]:.2f}x)")
    med = {w: float(np.median(r)) for w, r in ratios.items()}
    for w, r in ratios.items():
        print(f"worker {w}: ratio to plain int8 median {med[w]:.4f} (min {min(r):.4f}, max {max(r):.4f}, "
              f"{len(r)} paired measurements)")
    a, b = med.values()
    spread = abs(a - b) / np.mean([a, b])
    print(judge("bench_dask", "latency ratio of one artifact, worker vs worker (relative difference)", spread))


def json_reference(folder: Path) -> str:
    import json

    return json.loads((folder / "fashion_mnist-reference.json").read_text())["int8_artifact"]


if __name__ == "__main__":
    main()
    raise SystemExit(exit_status())
