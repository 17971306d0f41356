"""Replay a labelled dataset through the engine to compare query strategies before anyone labels.

Protocol, per repeat r (seed + r): a stratified train/test split; the featurizer fitted on the
train pool (no labels needed, as the worker does on a project's pool); `initial` random labels
with at least two classes, the same for every strategy in that repeat; then, until `budget`
labels, fit the project's classifier, record test accuracy and macro-F1, and let the strategy
pick the next `batch_size` items from the rest of the train pool, whose true labels are revealed.
AULC is the mean accuracy over the curve's points (the normalised area under the learning curve).

The strategies, featurizers and classifiers are the very ones the worker uses.
"""

import csv
import io
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split

from app.al.cold_start import cover_first, coverage_order
from app.al.models import TABULAR, TEXT, build_classifier, fit_featurizer
from app.al.strategies import STRATEGIES, get_strategy


@dataclass
class SimulationConfig:
    initial: int = 20
    batch_size: int = 10
    budget: int = 300
    test_fraction: float = 0.3
    repeats: int = 5
    seed: int = 0
    # "random": the first labels drawn uniformly; "coverage": k-means coverage order, as a project
    # with no model yet is served (app/al/cold_start.py)
    initial_mode: str = "random"
    # True: every strategy but random starts with TypiClust's cover batches while some label has
    # fewer than two examples, as the worker ranks a project (app/al/cold_start.cover_first); False
    # (the suite's protocol): the textbook strategies as published. auto covers either way: it is part of it.
    cover_first: bool = False

    def validate(self, n_rows: int) -> None:
        if not 0 < self.test_fraction < 1:
            raise ValueError("test_fraction must lie between 0 and 1")
        if self.initial < 2 or self.batch_size < 1 or self.repeats < 1:
            raise ValueError("initial must be at least 2, batch_size and repeats at least 1")
        if self.initial_mode not in ("random", "coverage"):
            raise ValueError("initial_mode is 'random' or 'coverage'")
        if self.budget < self.initial:
            raise ValueError("the budget must be at least the initial labels")
        train_rows = int(n_rows * (1 - self.test_fraction))
        if train_rows <= self.initial:
            raise ValueError(f"{n_rows} rows leave too few for {self.initial} initial labels and a test set")


@dataclass
class Dataset:
    name: str
    kind: str  # what the featurizer takes: "text", "tabular", "image" or "embedding" (app.al.models)
    X_raw: object  # list of texts, or a 2-D float array
    y: np.ndarray
    feature_names: list[str] = field(default_factory=list)


def load_dataset(path: str | Path, *, label_column: str, text_column: str | None = None) -> Dataset:
    """A labelled CSV, JSONL or Parquet file: texts from `text_column`, else every numeric column
    other than the label as features (rows with a missing label or value are dropped)."""
    path = Path(path)
    records = _read_records(path)
    if not records:
        raise ValueError(f"{path} has no rows")
    if label_column not in records[0]:
        raise ValueError(f"no column {label_column!r} in {path}; it has {', '.join(records[0])}")
    if text_column:
        rows = [(str(r[text_column]), r[label_column]) for r in records
                if r.get(text_column) not in (None, "") and r.get(label_column) not in (None, "")]
        return Dataset(path.stem, TEXT, [t for t, _ in rows], np.asarray([str(lab) for _, lab in rows], dtype=object))
    columns = [c for c in records[0] if c != label_column and _is_number(records[0][c])]
    if not columns:
        raise ValueError(f"no numeric feature columns in {path}; name a text column instead")
    X, y = [], []
    for r in records:
        values = [r.get(c) for c in columns]
        if r.get(label_column) in (None, "") or not all(_is_number(v) for v in values):
            continue
        X.append([float(v) for v in values])
        y.append(str(r[label_column]))
    return Dataset(path.stem, TABULAR, np.asarray(X, dtype=float), np.asarray(y, dtype=object), columns)


def _is_number(value) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    try:
        return bool(np.isfinite(float(value)))
    except (TypeError, ValueError):
        return False


def _read_records(path: Path) -> list[dict]:
    import bz2

    name = path.name.lower()
    compressed = name.endswith(".bz2")
    name = name.removesuffix(".bz2")
    if name.endswith((".parquet", ".pq")):
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    opener = bz2.open if compressed else open
    with opener(path, "rt", encoding="utf-8", newline="") as fh:
        if name.endswith((".jsonl", ".ndjson", ".json")):
            return [json.loads(line) for line in fh if line.strip()]
        return list(csv.DictReader(fh))


def _initial_sample(y_train: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` random positions whose labels cover at least two classes (retried; a cold start of one
    class cannot train a classifier)."""
    for _ in range(1000):
        picked = rng.choice(len(y_train), size=n, replace=False)
        if len(np.unique(y_train[picked])) >= 2:
            return picked
    classes = np.unique(y_train)
    first = rng.choice(np.flatnonzero(y_train == classes[0]))
    second = rng.choice(np.flatnonzero(y_train == classes[1]))
    rest = rng.choice(np.setdiff1d(np.arange(len(y_train)), [first, second]), size=n - 2, replace=False)
    return np.concatenate([[first, second], rest])


def _coverage_sample(X_train, y_train: np.ndarray, n: int, seed: int) -> np.ndarray:
    """The first `n` rows in coverage order (k-means with `n` clusters: one item near each centre);
    if they hold one class only, the order goes on until a second class turns up, as a project's
    cold start does."""
    order = coverage_order(X_train, n_clusters=n, limit=len(y_train), random_state=seed)
    picked = order[:n]
    if len(np.unique(y_train[picked])) < 2:
        other = next(i for i in order[n:] if y_train[i] != y_train[picked[0]])
        picked = np.concatenate([picked, [other]])
    return picked


def run_strategy(strategy_name: str, params: dict, *, X_train, y_train, X_test, y_test, initial: np.ndarray,
                 config: SimulationConfig, kind: str, seed: int) -> list[list[float]]:
    """One learning curve: [[n_labels, accuracy, macro_f1], ...] from `initial` to the budget."""
    labeled = list(initial)
    in_pool = np.ones(len(y_train), dtype=bool)
    in_pool[initial] = False
    curve = []
    # a stateful strategy (auto's bandit) gets its state back at every step, the rows' ids and,
    # like a project's, the label set (here every class of the dataset) unless its settings name
    # one (`"labels": null` turns auto's cover first off, e.g. in an al_suite --variant)
    stateful = getattr(STRATEGIES.get(strategy_name), "stateful", False)
    labels = [str(c) for c in np.unique(np.concatenate([y_train, y_test]))]
    if stateful:
        params = {"labels": labels, **params}
    covers = config.cover_first and strategy_name != "random" and not stateful
    state = None
    while True:
        classifier = build_classifier(kind)
        X_lab, y_lab = X_train[labeled], y_train[labeled]
        classifier.fit(X_lab, y_lab)
        predicted = classifier.predict(X_test)
        curve.append([len(labeled), float(accuracy_score(y_test, predicted)),
                      float(f1_score(y_test, predicted, average="macro"))])
        room = min(config.batch_size, config.budget - len(labeled), int(in_pool.sum()))
        if room <= 0:
            return curve
        pool_rows = np.flatnonzero(in_pool)
        X_pool = X_train[pool_rows]
        if stateful:
            strategy = get_strategy(strategy_name, random_state=seed + len(labeled), state=state, **params)
            utilities = strategy.utilities(classifier, X_pool, X_lab, y_lab, ids_pool=pool_rows, ids_labeled=labeled)
            chosen = pool_rows[strategy.select(utilities, room, X_pool, X_lab)]
            state = json.loads(json.dumps(strategy.state_))  # stored as JSON between steps, as the worker does
        else:
            # the worker's rule (cover_first) on an empty order: the cover batch alone when one is due
            cover_rows = cover_first(np.empty(0, dtype=np.int64), X_pool, X_lab, y_lab, labels, room,
                                     random_state=seed + len(labeled))[1] if covers else None
            if cover_rows is not None:
                chosen = pool_rows[cover_rows]
            else:
                strategy = get_strategy(strategy_name, random_state=seed + len(labeled), **params)
                utilities = strategy.utilities(classifier, X_pool, X_lab, y_lab)
                chosen = pool_rows[strategy.select(utilities, room, X_pool, X_lab)]
        labeled.extend(int(i) for i in chosen)
        in_pool[chosen] = False


def simulate(dataset: Dataset, strategies: Sequence[str], *, config: SimulationConfig | None = None,
             strategy_params: dict[str, dict] | None = None,
             progress: Callable[[str], None] | None = None) -> dict:
    """Run every strategy `config.repeats` times and summarise; returns the JSON-ready result."""
    config = config or SimulationConfig()
    config.validate(len(dataset.y))
    strategy_params = strategy_params or {}
    for name in strategies:  # fail before any work on an unknown strategy or parameter
        get_strategy(name, **strategy_params.get(name, {}))
    y = np.asarray(dataset.y, dtype=object)
    runs = []
    for repeat in range(config.repeats):
        seed = config.seed + repeat
        rng = np.random.default_rng(seed)
        train_idx, test_idx = protocol_split(y, config.test_fraction, seed)
        featurizer, X_train = fit_featurizer(dataset.kind, _take(dataset.X_raw, train_idx), n_items=len(train_idx))
        X_test = featurizer.transform(_take(dataset.X_raw, test_idx))
        if hasattr(X_train, "tocsr"):
            X_train, X_test = X_train.tocsr(), X_test.tocsr()
        y_train, y_test = y[train_idx], y[test_idx]
        if config.initial_mode == "coverage":
            initial = _coverage_sample(X_train, y_train, config.initial, seed)
        else:
            initial = _initial_sample(y_train, config.initial, rng)
        for name in strategies:
            started = time.perf_counter()
            curve = run_strategy(name, strategy_params.get(name, {}), X_train=X_train, y_train=y_train,
                                 X_test=X_test, y_test=y_test, initial=initial, config=config,
                                 kind=dataset.kind, seed=seed)
            seconds = time.perf_counter() - started
            aulc = float(np.mean([point[1] for point in curve]))
            runs.append({"strategy": name, "repeat": repeat, "curve": curve, "aulc": aulc, "seconds": seconds})
            if progress:
                progress(f"repeat {repeat + 1}/{config.repeats} {name}: AULC {aulc:.4f} in {seconds:.1f}s")
    return {"dataset": dataset.name, "kind": dataset.kind, "n_rows": int(len(y)),
            "classes": sorted({str(c) for c in y}), "config": asdict(config),
            "strategy_params": strategy_params, "runs": runs, "summary": summarise(runs)}


def protocol_split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The repeat's train and test positions: stratified when every class has two rows."""
    _, counts = np.unique(y, return_counts=True)
    return train_test_split(np.arange(len(y)), test_size=test_fraction, random_state=seed,
                            stratify=y if counts.min() >= 2 else None)


def summarise(runs: list[dict]) -> dict:
    summary = {}
    for name in dict.fromkeys(r["strategy"] for r in runs):
        aulcs = np.asarray([r["aulc"] for r in runs if r["strategy"] == name])
        summary[name] = {
            "aulc_mean": float(aulcs.mean()),
            "aulc_std": float(aulcs.std(ddof=1)) if len(aulcs) > 1 else 0.0,
            "repeats": int(len(aulcs)),
            "seconds_mean": float(np.mean([r["seconds"] for r in runs if r["strategy"] == name])),
        }
    return summary


def _take(X_raw, idx: np.ndarray):
    if isinstance(X_raw, np.ndarray):
        return X_raw[idx]
    return [X_raw[i] for i in idx]


def plot_curves(result: dict, path: str | Path, title: str | None = None) -> None:
    """Mean learning curve per strategy, with a band of one standard deviation over repeats."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for name in result["summary"]:
        curves = np.asarray([r["curve"] for r in result["runs"] if r["strategy"] == name])
        n_labels, accuracy = curves[0, :, 0], curves[:, :, 1]
        mean, std = accuracy.mean(axis=0), accuracy.std(axis=0)
        line, = ax.plot(n_labels, mean, label=f"{name} ({result['summary'][name]['aulc_mean']:.3f})")
        ax.fill_between(n_labels, mean - std, mean + std, color=line.get_color(), alpha=0.12)
    ax.set_xlabel("labels")
    ax.set_ylabel("test accuracy")
    ax.set_title(title or f"{result['dataset']}: mean of {result['config']['repeats']} repeats (AULC)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    Path(path).write_bytes(buffer.getvalue())
