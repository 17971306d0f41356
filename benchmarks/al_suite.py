"""Active-learning benchmark suite: every strategy against random on real datasets, offline.

Runs the simulator (`app.al.simulate`, the very strategies, featurizers and classifiers the
worker uses) over the datasets of `benchmarks/datasets.py`. Protocol (the defaults): standard-
scaled logistic regression (TF-IDF + logistic regression for text), 20 initial labels, batches of
10 up to 300 labels, a stratified 30% test split, 5 repeats; within a repeat every strategy gets
the same split and the same initial labels. AULC = mean test accuracy over the learning curve.

Printed: a Markdown table per dataset (mean AULC, standard deviation, standard error, gain over
random in AULC points with the standard error of the paired per-repeat differences), then the
summary per strategy: datasets where it beats random, its mean gain over random, and the
datasets where it is worse than random by more than one (paired) standard error; and the
done-when check of `auto`. The full results go to JSON (`--json`) so docs can be regenerated
(`--from-json` reprints the tables from such a file without running anything).

    python benchmarks/al_suite.py                          # full protocol, all datasets (slow)
    python benchmarks/al_suite.py --quick                  # 2 repeats, 6 datasets, budget 150
    python benchmarks/al_suite.py --headroom               # full-pool accuracy: how far a curve can rise
    python benchmarks/al_suite.py --held-out --strategies random,margin,margin_diverse,auto
                                                           # tables no setting was chosen on
    python benchmarks/al_suite.py --datasets digits,pima --strategies random,margin,auto --repeats 3
    python benchmarks/al_suite.py --app-cold-start --datasets leaf --strategies random,margin --repeats 10
                                                           # margin as a margin project is served
    python benchmarks/al_suite.py --strategies random,margin,auto,auto_rnd --repeats 10 \
        --variant 'auto_rnd=auto:{"arms": ["margin_diverse", "badge", "margin", "random"]}'

Strategies by default: random, least_confidence, margin, entropy, vote_entropy,
consensus_entropy, kl_disagreement (bagging committees of 5), expected_gradient_length,
density_weighted (entropy x density: euclidean similarity on tabular data, cosine on text),
margin_random, margin_density, margin_diverse, badge and auto. expected_error_reduction is left out by
default (one Newton step per candidate and class over the whole pool at every query: far slower
than the rest on the larger pools); add it with --strategies.
"""

import argparse
import json
import sys
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.al.simulate import SimulationConfig, simulate, summarise  # noqa: E402
from app.al.strategies import STRATEGIES  # noqa: E402
from benchmarks.datasets import ALL_DATASETS, DATASETS, HELD_OUT, describe, load, package_version  # noqa: E402

DEFAULT_STRATEGIES = ("random", "least_confidence", "margin", "entropy", "vote_entropy", "consensus_entropy",
                      "kl_disagreement", "expected_gradient_length", "density_weighted", "margin_random",
                      "margin_density", "margin_diverse", "badge", "auto")
QUICK_DATASETS = ("breast_cancer", "pima", "digits", "cells", "wells", "olive")
# relative cost, to start the slow tasks first
_COST = {"vote_entropy": 5, "consensus_entropy": 5, "kl_disagreement": 5, "expected_error_reduction": 20,
         "auto": 3, "density_weighted": 2, "margin_density": 2}


def _register_optional() -> None:
    """Strategies implemented in app.al.strategies but not (yet) in its registry."""
    from app.al.strategies.error_reduction import ExpectedErrorReduction
    from app.al.strategies.model_change import ExpectedGradientLength

    for cls in (ExpectedGradientLength, ExpectedErrorReduction):
        STRATEGIES.setdefault(cls.name, cls)


_register_optional()


def strategy_params(name: str, kind: str) -> dict:
    if name == "density_weighted":
        return {"metric": "cosine" if kind == "text" else "euclidean"}
    return {}


@lru_cache(maxsize=4)
def _dataset(name: str):
    return load(name)


def run_task(dataset_name: str, strategy: str, repeat: int, config: dict) -> dict:
    """One learning curve: `strategy` on `dataset_name`, repeat `repeat` (seed = seed + repeat)."""
    import warnings

    # many-class sets (leaf): "more than 50% of the samples are unique classes" at the first fits
    warnings.filterwarnings("ignore", message="The number of unique classes")
    dataset = _dataset(dataset_name)
    name, params = resolve(strategy, dataset.kind, config.get("variants"))
    settings = {k: v for k, v in config.items() if k != "variants"}
    cfg = SimulationConfig(**{**settings, "repeats": 1, "seed": config["seed"] + repeat})
    result = simulate(dataset, [name], config=cfg, strategy_params={name: params})
    run = result["runs"][0]
    return {"dataset": dataset_name, **run, "strategy": strategy, "repeat": repeat}


def resolve(strategy: str, kind: str, variants: dict | None) -> tuple[str, dict]:
    """The registered strategy behind a name (itself, or a --variant's) and its settings for `kind`."""
    base, extra = (variants or {}).get(strategy, (strategy, {}))
    return base, {**strategy_params(base, kind), **extra}


def parse_variant(text: str) -> tuple[str, tuple[str, dict]]:
    """NAME=STRATEGY or NAME=STRATEGY:{json settings}, e.g. auto_rnd=auto:{"random_share": 0.2}."""
    name, sep, rest = text.partition("=")
    strategy, _, params = rest.partition(":")
    if not sep or not name or not strategy:
        raise ValueError(f"--variant wants NAME=STRATEGY[:JSON], got {text!r}")
    return name, (strategy, json.loads(params) if params else {})


def analyse(runs: list[dict], datasets: list[str], strategies: list[str], adaptive=("auto",)) -> dict:
    """Per dataset and strategy: AULC statistics and the paired gain over random; then the summary."""
    per_dataset = {}
    for d in datasets:
        d_runs = [r for r in runs if r["dataset"] == d]
        if not d_runs:
            continue
        stats = summarise(d_runs)
        base = {r["repeat"]: r["aulc"] for r in d_runs if r["strategy"] == "random"}
        for s, st in stats.items():
            st["aulc_se"] = st["aulc_std"] / np.sqrt(st["repeats"])
            mine = {r["repeat"]: r["aulc"] for r in d_runs if r["strategy"] == s}
            common = sorted(set(mine) & set(base))
            if base and common:
                diff = np.asarray([mine[k] - base[k] for k in common])
                st["gain"] = float(diff.mean())
                st["gain_se"] = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0
                # unpaired standard error of the difference of the two means, for reference
                st["gain_se_unpaired"] = float(np.hypot(st["aulc_se"], stats["random"]["aulc_se"]))
        per_dataset[d] = stats
    summary = {}
    for s in strategies:
        rows = {d: st[s] for d, st in per_dataset.items() if s in st and "gain" in st[s]}
        if not rows or s == "random":
            continue
        gains = np.asarray([r["gain"] for r in rows.values()])
        summary[s] = {
            "datasets": len(rows),
            "wins": int((gains > 0).sum()),
            "mean_gain": float(gains.mean()),
            "median_gain": float(np.median(gains)),
            "worse_1se": [d for d, r in rows.items() if r["gain"] < -r["gain_se"]],
            "worse_1se_unpaired": [d for d, r in rows.items() if r["gain"] < -r["gain_se_unpaired"]],
            "seconds_per_run": float(np.mean([r["seconds_mean"] for r in rows.values()])),
        }
    return {"per_dataset": per_dataset, "summary": summary, "oracle": oracle(per_dataset, adaptive)}


def oracle(per_dataset: dict, adaptive=("auto",)) -> dict | None:
    """The best fixed strategy per dataset, picked in hindsight from this run (random, auto and its
    variants left out): the ceiling for any rule that only chooses among the fixed strategies."""
    best = {}
    for d, stats in per_dataset.items():
        gains = {s: st["gain"] for s, st in stats.items()
                 if s != "random" and s not in adaptive and "gain" in st}
        if gains:
            name = max(gains, key=gains.get)
            best[d] = {"strategy": name, "gain": gains[name]}
    if not best:
        return None
    return {"per_dataset": best, "mean_gain": float(np.mean([b["gain"] for b in best.values()])),
            "wins": sum(b["gain"] > 0 for b in best.values()), "datasets": len(best)}


def done_when(summary: dict) -> dict | None:
    """The issue's criteria for auto: above random on >= 9 datasets in 10, never worse than random
    by more than one standard error, mean gain >= twice margin's."""
    if "auto" not in summary or "margin" not in summary:
        return None
    a, m = summary["auto"], summary["margin"]
    checks = {
        "wins_at_least_90_percent": a["wins"] >= 0.9 * a["datasets"],
        "never_worse_by_1se": not a["worse_1se"],
        "gain_at_least_twice_margin": a["mean_gain"] >= 2 * m["mean_gain"] and a["mean_gain"] > 0,
    }
    return {**checks, "all": all(checks.values()), "auto_wins": f"{a['wins']}/{a['datasets']}",
            "auto_gain": a["mean_gain"], "margin_gain": m["mean_gain"]}


def render(report: dict) -> str:
    pts = 100.0
    out = []
    meta = report["meta"]
    out.append(f"# Active-learning suite: {len(report['datasets'])} datasets, {meta['config']['repeats']} repeats, "
               f"{meta['config']['initial']} initial labels, batches of {meta['config']['batch_size']} up to "
               f"{meta['config']['budget']}, {meta['config']['test_fraction']:.0%} test"
               f"{', every strategy covering first as in the app' if meta['config'].get('cover_first') else ''}\n")
    out.append("AULC and gains in accuracy points (x100). gain: mean paired difference to random over the repeats, "
               "+- its standard error.\n")
    out.append("| dataset | rows | features | classes | source |\n|---|---|---|---|---|")
    for d in report["datasets"]:
        info = report["dataset_info"][d]
        out.append(f"| {d} | {info['rows']} | {info['features']} | {info['classes']} | {info['source']} |")
    out.append("")
    for d, stats in report["analysis"]["per_dataset"].items():
        out.append(f"## {d}\n")
        out.append("| strategy | AULC | std | SE | gain vs random | s/run |\n|---|---|---|---|---|---|")
        for s, st in stats.items():
            gain = ("" if s == "random"
                    else f"{st.get('gain', float('nan')) * pts:+.2f} +- {st.get('gain_se', 0) * pts:.2f}")
            out.append(f"| {s} | {st['aulc_mean'] * pts:.2f} | {st['aulc_std'] * pts:.2f} | "
                       f"{st['aulc_se'] * pts:.2f} | {gain} | {st['seconds_mean']:.1f} |")
        out.append("")
    out.append("## Summary over datasets\n")
    out.append("worse: datasets where the mean paired gain is below minus its standard error (in brackets: "
               "below minus the unpaired standard error of the two means).\n")
    out.append("| strategy | wins over random | mean gain (pts) | median gain (pts) | worse than random by > 1 SE "
               "| s/run |")
    out.append("|---|---|---|---|---|---|")
    for s, st in report["analysis"]["summary"].items():
        worse = ", ".join(st["worse_1se"]) or "none"
        unpaired = ", ".join(st.get("worse_1se_unpaired", [])) or "none"
        out.append(f"| {s} | {st['wins']}/{st['datasets']} | {st['mean_gain'] * pts:+.2f} | "
                   f"{st['median_gain'] * pts:+.2f} | {worse} ({unpaired}) | {st['seconds_per_run']:.1f} |")
    check = report.get("done_when")
    if check:
        def verdict(ok):
            return "ok" if ok else "NOT met"

        out.append("")
        out.append(f"auto: above random on {check['auto_wins']} datasets "
                   f"({verdict(check['wins_at_least_90_percent'])}: >= 9 in 10); never worse than random by > 1 SE: "
                   f"{verdict(check['never_worse_by_1se'])}; mean gain {check['auto_gain'] * pts:+.2f} vs margin "
                   f"{check['margin_gain'] * pts:+.2f} pts ({verdict(check['gain_at_least_twice_margin'])}: "
                   f">= twice margin's). All criteria: {'MET' if check['all'] else 'NOT MET'}.")
    best = report["analysis"].get("oracle")
    if best:
        picks = ", ".join(f"{d} {b['strategy']} {b['gain'] * pts:+.2f}" for d, b in best["per_dataset"].items())
        out.append("")
        out.append(f"Ceiling of choosing among the fixed strategies: the best one per dataset, picked in hindsight, "
                   f"gains {best['mean_gain'] * pts:+.2f} pts on average and beats random on {best['wins']}/"
                   f"{best['datasets']} datasets ({picks}).")
    out.append(f"\nRun time: {meta['seconds']:.0f} s with {meta['jobs']} process(es).")
    for update in meta.get("updates", []):
        pairs = ", ".join(f"{d}/{s}" for d, s in update["rerun"])
        out.append(f"Rerun later ({update['seconds']:.0f} s, `{update['command']}`), in place of the first run's "
                   f"curves: {pairs}.")
    return "\n".join(out)


def blocks(report: dict, size: int) -> str:
    """The done-when check on consecutive blocks of `size` repeats of one run (`--from-json X --blocks 5`):
    how much the verdict of a 5-repeat suite depends on which seeds it drew."""
    n = report["meta"]["config"]["repeats"]
    if size < 2 or n < 2 * size:
        raise ValueError(f"--blocks {size}: the run has {n} repeats; it needs at least two blocks of two or more")
    pts = 100.0
    out = ["| repeats | auto wins | auto mean gain | margin mean gain | ratio | auto worse by > 1 SE "
           "| best fixed strategy in hindsight wins | all criteria |", "|---|---|---|---|---|---|---|---|"]
    for start in range(0, n - size + 1, size):
        runs = [r for r in report["runs"] if start <= r["repeat"] < start + size]
        analysis = analyse(runs, report["datasets"], report["strategies"])
        check = done_when(analysis["summary"])
        if check is None:
            raise ValueError("--blocks needs a run with auto and margin")
        ratio = check["auto_gain"] / check["margin_gain"] if check["margin_gain"] > 0 else float("nan")
        best = analysis["oracle"]
        worse = ", ".join(analysis["summary"]["auto"]["worse_1se"]) or "none"
        out.append(f"| {start}-{start + size - 1} | {check['auto_wins']} | {check['auto_gain'] * pts:+.2f} | "
                   f"{check['margin_gain'] * pts:+.2f} | {ratio:.2f} | {worse} | {best['wins']}/{best['datasets']} | "
                   f"{'MET' if check['all'] else 'not met'} |")
    return "\n".join(out)


def headroom(datasets: list[str], repeats: int, seed: int, test_fraction: float) -> str:
    """Accuracy of the project's model fitted on the whole training pool, per dataset, over the
    protocol's splits (seed + r): the level a learning curve tends to, against which random's AULC
    shows how many points any strategy could still gain."""
    from app.al.models import build_classifier, build_featurizer
    from app.al.simulate import _take, protocol_split

    lines = ["| dataset | full-pool accuracy | +- SE |", "|---|---|---|"]
    for name in datasets:
        dataset = _dataset(name)
        y = np.asarray(dataset.y, dtype=object)
        accuracies = []
        for r in range(repeats):
            train, test = protocol_split(y, test_fraction, seed + r)
            featurizer = build_featurizer(dataset.kind, n_items=len(train))
            X_train = featurizer.fit_transform(_take(dataset.X_raw, train))
            model = build_classifier(dataset.kind).fit(X_train, y[train])
            predicted = model.predict(featurizer.transform(_take(dataset.X_raw, test)))
            accuracies.append(float(np.mean(predicted == y[test])))
        se = np.std(accuracies, ddof=1) / np.sqrt(repeats) if repeats > 1 else 0.0
        lines.append(f"| {name} | {100 * np.mean(accuracies):.2f} | {100 * se:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", help=f"comma-separated, default all: {', '.join(DATASETS)}")
    parser.add_argument("--strategies", help=f"comma-separated, default {', '.join(DEFAULT_STRATEGIES)}")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--initial", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--test-fraction", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (joblib)")
    parser.add_argument("--held-out", action="store_true",
                        help=f"the held-out tables instead of the suite's: {', '.join(HELD_OUT)}")
    parser.add_argument("--quick", action="store_true",
                        help=f"2 repeats, budget 150, datasets {', '.join(QUICK_DATASETS)} (unless given)")
    parser.add_argument("--json", type=Path, help="write the full results (every curve) here")
    parser.add_argument("--markdown", type=Path, help="also write the printed tables here")
    parser.add_argument("--from-json", type=Path, help="reprint the tables of an earlier --json file; run nothing")
    parser.add_argument("--blocks", type=int, metavar="N",
                        help="with --from-json: the done-when check on each block of N consecutive repeats")
    parser.add_argument("--plot", help="comma-separated datasets: write their learning curves as PNG files")
    parser.add_argument("--plot-strategies", default="random,margin,margin_diverse,auto",
                        help="the strategies drawn in --plot")
    parser.add_argument("--plot-dir", type=Path, default=Path("docs/img"), help="where --plot writes")
    parser.add_argument("--update-json", type=Path,
                        help="an earlier --json run with the same protocol: run only --datasets x --strategies, "
                             "put those curves in place of the file's ones (e.g. after changing one strategy) and "
                             "report the whole; the meta records what was rerun")
    parser.add_argument("--headroom", action="store_true",
                        help="print, per dataset, test accuracy with every training row labelled (the protocol's "
                             "splits and model) and random's AULC: how much any strategy could gain; run nothing else")
    parser.add_argument("--app-cold-start", action="store_true",
                        help="every strategy but random starts with TypiClust's cover batches while some label has "
                             "fewer than two examples, as the worker ranks a project (the protocol: textbook "
                             "strategies; auto covers either way)")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=STRATEGY[:JSON]",
                        help="a strategy with other settings under its own name, e.g. "
                             "'auto_rnd=auto:{\"arms\": [\"margin\", \"random\"]}'; name it in --strategies")
    args = parser.parse_args(argv)

    if args.blocks and not args.from_json:
        parser.error("--blocks reprints an earlier run: give it --from-json")
    if args.from_json:
        report = json.loads(args.from_json.read_text())
        if args.blocks:
            try:
                print(blocks(report, args.blocks))
            except ValueError as exc:
                parser.error(str(exc))
            return 0
        print(render(report))
        plot(report, args)
        return 0
    if args.quick:
        args.repeats = 2 if args.repeats == 5 else args.repeats
        args.budget = 150 if args.budget == 300 else args.budget
    datasets = (args.datasets.split(",") if args.datasets
                else list(HELD_OUT) if args.held_out else list(QUICK_DATASETS) if args.quick else list(DATASETS))
    strategies = args.strategies.split(",") if args.strategies else list(DEFAULT_STRATEGIES)
    if "random" not in strategies:
        strategies.insert(0, "random")
    for d in datasets:
        if d not in ALL_DATASETS:
            parser.error(f"unknown dataset {d!r}; choose from {', '.join(ALL_DATASETS)}")
    try:
        variants = dict(parse_variant(v) for v in args.variant)
    except ValueError as exc:  # json.JSONDecodeError included
        parser.error(str(exc))
    for s in strategies:
        if s not in STRATEGIES and s not in variants:
            parser.error(f"unknown strategy {s!r}; choose from {', '.join(STRATEGIES)} or a --variant")
    for name, (strategy, _) in variants.items():
        if strategy not in STRATEGIES:
            parser.error(f"--variant {name}: unknown strategy {strategy!r}")
        try:
            STRATEGIES[strategy](**resolve(name, "tabular", variants)[1])
        except (TypeError, ValueError) as exc:
            parser.error(f"--variant {name}: {exc}")
    if args.headroom:
        print(headroom(datasets, args.repeats, args.seed, args.test_fraction))
        return 0
    config = {"initial": args.initial, "batch_size": args.batch_size, "budget": args.budget,
              "test_fraction": args.test_fraction, "repeats": args.repeats, "seed": args.seed}
    if args.app_cold_start:  # (absent from the protocol's reports, whose config predates it)
        config["cover_first"] = True
    if variants:
        config["variants"] = {k: [v[0], v[1]] for k, v in variants.items()}

    info = {}
    for d in datasets:
        described = describe(_dataset(d))
        source = ALL_DATASETS[d][1]
        info[d] = {**described, "source": f"{source} ({package_version(source)})"}
    tasks = [(d, s, r) for d in datasets for s in strategies for r in range(args.repeats)]
    size = {d: info[d]["rows"] * (4 if info[d]["features"] == "text" else 1) for d in datasets}
    tasks.sort(key=lambda t: -size[t[0]] * _COST.get(resolve(t[1], "tabular", variants)[0], 1))
    started = time.perf_counter()
    runs = []
    if args.jobs > 1:
        from joblib import Parallel, delayed

        from benchmarks.al_suite import run_task as task  # by reference, not a pickled copy of __main__'s

        results = Parallel(n_jobs=args.jobs, return_as="generator_unordered")(
            delayed(task)(d, s, r, config) for d, s, r in tasks)
    else:
        results = (run_task(d, s, r, config) for d, s, r in tasks)
    for done, run in enumerate(results, 1):
        runs.append(run)
        print(f"[{done}/{len(tasks)} {time.perf_counter() - started:.0f}s] {run['dataset']} {run['strategy']} "
              f"repeat {run['repeat']}: AULC {run['aulc']:.4f} ({run['seconds']:.1f}s)", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - started

    meta = {"config": config, "jobs": args.jobs, "seconds": seconds, "command": " ".join(sys.argv)}
    if args.update_json:
        base = json.loads(args.update_json.read_text())
        if {k: v for k, v in base["meta"]["config"].items() if k != "variants"} != \
                {k: v for k, v in config.items() if k != "variants"}:
            raise SystemExit(f"--update-json: {args.update_json} ran another protocol: {base['meta']['config']}")
        rerun = {(r["dataset"], r["strategy"]) for r in runs}
        runs = [r for r in base["runs"] if (r["dataset"], r["strategy"]) not in rerun] + runs
        datasets = base["datasets"] + [d for d in datasets if d not in base["datasets"]]
        strategies = base["strategies"] + [s for s in strategies if s not in base["strategies"]]
        info = {**base["dataset_info"], **info}
        variants = {**{k: tuple(v) for k, v in base["meta"]["config"].get("variants", {}).items()}, **variants}
        meta = {**base["meta"], "updates": [*base["meta"].get("updates", []),
                                            {**meta, "rerun": sorted(map(list, rerun))}]}
    runs.sort(key=lambda r: (datasets.index(r["dataset"]), strategies.index(r["strategy"]), r["repeat"]))
    adaptive = ["auto", *(name for name, (base, _) in variants.items() if base == "auto")]
    analysis = analyse(runs, datasets, strategies, adaptive)
    report = {"meta": meta,
              "datasets": datasets, "dataset_info": info, "strategies": strategies,
              "strategy_params": {d: {s: resolve(s, _dataset(d).kind, variants)[1] for s in strategies}
                                  for d in datasets},
              "analysis": analysis, "done_when": done_when(analysis["summary"]), "runs": runs}
    text = render(report)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text + "\n")
    plot(report, args)
    return 0


def plot(report: dict, args) -> None:
    """Learning curves of --plot-strategies on each --plot dataset: suite-<dataset>.png."""
    if not args.plot:
        return
    from app.al.simulate import plot_curves

    wanted = args.plot_strategies.split(",")
    repeats = report["meta"]["config"]["repeats"]
    args.plot_dir.mkdir(parents=True, exist_ok=True)
    for d in args.plot.split(","):
        stats = report["analysis"]["per_dataset"].get(d)
        if stats is None:
            raise SystemExit(f"--plot: no results for dataset {d!r} in this run")
        names = [s for s in wanted if s in stats]
        result = {"dataset": d, "config": {"repeats": repeats},
                  "summary": {s: stats[s] for s in names},
                  "runs": [r for r in report["runs"] if r["dataset"] == d and r["strategy"] in names]}
        path = args.plot_dir / f"suite-{d}.png"
        plot_curves(result, path, title=f"{d}: mean of {repeats} repeats (AULC in the legend)")
        print(f"(wrote {path})", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
