"""The tabular benchmark's configuration: the discrete space of networks (per-stage channel counts), how each is
made and measured, and the pre-registered analysis; loaded and checked whole before anything is written."""

from __future__ import annotations

import itertools
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

OPTIMISERS = ("gp", "gp-objective", "tpe", "random", "greedy")

ANALYSIS = {
    "primary": "regret at 20 trials: latency of the chosen network / latency of the fastest network in the table "
               "that clears the bar (1.0 = found the best); a search that clears no bar scores plain int8's latency",
    "comparisons": [["gp", "random"], ["tpe", "random"], ["gp", "tpe"]],
    "test": "Wilcoxon signed-rank over the paired seeds of log regret (one-sided 'first is lower' against random, "
            "two-sided for gp vs tpe)",
    "alpha": 0.05,
    "interval": 0.90,
    "statistic": "median paired ratio of regrets (first / second), bootstrap interval over seeds",
    "equivalence_margin": 0.03,
    "equivalence": "no difference is concluded when the whole interval lies within 1 +/- margin",
    "secondary": ["probability of having found the best network by each budget", "anytime regret with bands"],
}


@dataclass(frozen=True)
class Lattice:
    """Per-stage channel counts (ResNet-18's layer1..layer4): every combination is one distinct network."""

    stages: dict  # stage name -> sorted channel counts

    def networks(self) -> list[tuple]:
        return list(itertools.product(*self.stages.values()))

    def __len__(self) -> int:
        n = 1
        for v in self.stages.values():
            n *= len(v)
        return n

    @staticmethod
    def key(channels) -> str:
        return "-".join(str(int(c)) for c in channels)

    @staticmethod
    def parse_key(key: str) -> tuple:
        return tuple(int(c) for c in key.split("-"))

    def ratios(self, channels, base) -> dict:
        """Per-stage pruning ratios that keep exactly ``channels`` of the baseline's ``base`` channels."""
        return {s: 1 - c / b for s, c, b in zip(self.stages, channels, base)}

    def shrinks(self, channels) -> list[tuple]:
        """The networks one notch narrower in exactly one stage (NetAdapt's candidates), in stage order."""
        out = []
        for i, (s, choices) in enumerate(self.stages.items()):
            j = choices.index(channels[i])
            if j > 0:
                out.append(tuple(choices[j - 1] if k == i else c for k, c in enumerate(channels)))
        return out

    def widest(self) -> tuple:
        return tuple(v[-1] for v in self.stages.values())


@dataclass
class TableConfig:
    """A tabular benchmark, read from YAML (:func:`load_table_config`)."""

    name: str
    space: dict
    datasets: list = field(default_factory=lambda: ["glyphs", "fashion_mnist"])
    architecture: str = "resnet18"
    profile: str = "default"
    importance: str = "l1"
    round_to: int = 8
    finetune_epochs: dict | float = 1.0
    finetune_lr: float = 0.05
    finetune_batch: int = 256
    calibration: int = 64
    finetune_images: int | None = None
    val_images: int | None = None
    test_images: int | None = None
    order_seed: int = 0
    scratch_b: int = 50  # random networks re-trained from scratch, besides the front and the uniform widths
    second_seed: int = 30  # random networks fine-tuned again with training seed 1
    uniform: list = field(default_factory=lambda: [0.375, 0.5, 0.625, 0.75])
    threshold: float = 1.0
    optimisers: list = field(default_factory=lambda: list(OPTIMISERS))
    seeds: int = 50
    budgets: list = field(default_factory=lambda: [10, 20, 40])
    n_initial: int = 5
    analysis: dict = field(default_factory=lambda: dict(ANALYSIS))

    def key(self) -> str:
        """A hash of everything that decides the table's rows (not the replay's optimisers, seeds or budgets)."""
        from helpers.core.identity import config_key

        d = asdict(self)
        for k in ("optimisers", "seeds", "budgets", "n_initial", "analysis"):
            d.pop(k)
        return config_key(d)

    def lattice(self) -> Lattice:
        return Lattice({k: sorted(int(c) for c in v) for k, v in self.space.items()})

    def epochs(self, dataset: str) -> float:
        e = self.finetune_epochs
        return float(e[dataset] if isinstance(e, dict) else e)


def load_table_config(path: str | Path) -> TableConfig:
    """Read and check a table config; every bad field is one sentence (ValueError) before anything is written."""
    import yaml

    from helpers.compress.pruning import IMPORTANCES
    from helpers.datasets.data import DATASETS, known_dataset
    from helpers.networks.params import PROFILES

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"table config {path} does not exist; give a YAML file such as params/tables/o8-table.yaml")
    raw = yaml.safe_load(path.read_text())
    if not isinstance(raw, dict):
        raise ValueError(f"table config {path} is not a mapping of fields; see params/tables/o8-table.yaml")
    names = list(TableConfig.__dataclass_fields__)
    unknown = sorted(set(raw) - set(names))
    if unknown:
        raise ValueError(f"table config {path}: unknown field {unknown[0]!r}; it takes {', '.join(names)}")
    for need in ("name", "space"):
        if need not in raw:
            raise ValueError(f"table config {path} lacks '{need}'")
    cfg = TableConfig(**raw)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", str(cfg.name)):
        raise ValueError(f"table name {cfg.name!r} must be letters, digits, '.', '_' or '-' (it names a folder)")
    if cfg.architecture != "resnet18":
        raise ValueError(f"architecture {cfg.architecture!r}: the table's space is ResNet-18's per-stage channels; "
                         "use resnet18")
    if cfg.profile not in PROFILES:
        raise ValueError(f"profile {cfg.profile!r} is not one of {', '.join(PROFILES)}")
    if not cfg.datasets or any(not known_dataset(d) for d in cfg.datasets):
        bad = [d for d in cfg.datasets if not known_dataset(d)]
        raise ValueError(f"datasets: {bad[0] if bad else '(none)'!r} is not a dataset; choose from {', '.join(DATASETS)} "
                         "or imagefolder:<path>")
    if cfg.importance not in IMPORTANCES:
        raise ValueError(f"importance {cfg.importance!r} is not one of {', '.join(IMPORTANCES)}")
    if not isinstance(cfg.space, dict) or list(cfg.space) != ["layer1", "layer2", "layer3", "layer4"]:
        raise ValueError("space must list channel counts for layer1, layer2, layer3 and layer4, in that order")
    for stage, choices in cfg.space.items():
        if (not isinstance(choices, list) or not choices
                or any(not isinstance(c, int) or isinstance(c, bool) or c < 1 for c in choices)
                or len(set(choices)) != len(choices)):
            raise ValueError(f"space.{stage}: {choices!r} is not a list of distinct positive channel counts")
        if any(c % cfg.round_to for c in choices):
            raise ValueError(f"space.{stage}: {choices!r} has counts that are not multiples of round_to {cfg.round_to}")
    if isinstance(cfg.finetune_epochs, dict):
        missing = [d for d in cfg.datasets if d not in cfg.finetune_epochs]
        if missing:
            raise ValueError(f"finetune_epochs has no entry for {missing[0]!r}")
    for what in ("threshold",):
        v = getattr(cfg, what)
        if not isinstance(v, (int, float)) or not 0 <= v <= 100:
            raise ValueError(f"{what} {v!r} must be accuracy points in [0, 100]")
    bad = [o for o in cfg.optimisers if o not in OPTIMISERS]
    if bad:
        raise ValueError(f"optimiser {bad[0]!r} is not one of {', '.join(OPTIMISERS)}")
    n = len(cfg.lattice())
    for b in cfg.budgets:
        if not isinstance(b, int) or b < 1 or b > n:
            raise ValueError(f"budget {b!r} is not a number of trials between 1 and the space's {n} networks")
    if not isinstance(cfg.seeds, int) or cfg.seeds < 1:
        raise ValueError(f"seeds {cfg.seeds!r} must be a number of replays of at least 1")
    if cfg.n_initial < 1 or cfg.n_initial > min(cfg.budgets):
        raise ValueError(f"n_initial {cfg.n_initial} must lie between 1 and the smallest budget {min(cfg.budgets)}")
    iv = cfg.analysis.get("interval")
    if not isinstance(iv, (int, float)) or not 0 < iv < 1:
        raise ValueError(f"analysis.interval {iv!r} must be a probability in (0, 1)")
    margin = cfg.analysis.get("equivalence_margin")
    if not isinstance(margin, (int, float)) or not 0 < margin < 1:
        raise ValueError(f"analysis.equivalence_margin {margin!r} must be a fraction in (0, 1)")
    for pair in cfg.analysis.get("comparisons", []):
        if len(pair) != 2 or any(o not in cfg.optimisers for o in pair):
            raise ValueError(f"analysis.comparisons: {pair!r} must name two of the optimisers {', '.join(cfg.optimisers)}")
    return cfg
