"""Cold start by coverage against a uniform cold start, on the suite's datasets.

For each dataset: the suite's protocol (benchmarks/al_suite.py: 20 initial labels, batches of 10
up to 300, 30% test, 5 repeats), run twice: with the first 20 labels drawn uniformly
(`initial_mode="random"`) and in k-means coverage order (`initial_mode="coverage"`, as a project
with no model yet is served). Prints mean AULC (x100) for margin and random under each, and the
mean difference coverage - uniform.

    python benchmarks/bench_cold_start.py                       # every tabular suite dataset
    python benchmarks/bench_cold_start.py --datasets iris,olive --repeats 3
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from datasets import DATASETS, load  # noqa: E402

from app.al.simulate import SimulationConfig, simulate  # noqa: E402

STRATEGIES = ("margin", "random")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=",".join(n for n in DATASETS if n != "rotten_tomatoes"))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print("| dataset | " + " | ".join(f"{s}, uniform first 20 | {s}, coverage first 20" for s in STRATEGIES) + " |")
    print("|---" * (1 + 2 * len(STRATEGIES)) + "|")
    gains = {s: [] for s in STRATEGIES}
    for name in args.datasets.split(","):
        dataset = load(name)
        aulc = {}
        for mode in ("random", "coverage"):
            result = simulate(dataset, list(STRATEGIES),
                              config=SimulationConfig(repeats=args.repeats, initial_mode=mode))
            aulc[mode] = {s: 100 * result["summary"][s]["aulc_mean"] for s in STRATEGIES}
        for s in STRATEGIES:
            gains[s].append(aulc["coverage"][s] - aulc["random"][s])
        print(f"| {name} | " + " | ".join(f"{aulc['random'][s]:.2f} | {aulc['coverage'][s]:.2f}"
                                          for s in STRATEGIES) + " |", flush=True)
    for s in STRATEGIES:
        g = np.asarray(gains[s])
        print(f"{s}: coverage - uniform cold start, mean {g.mean():+.2f} AULC points, "
              f"better on {int((g > 0).sum())} of {len(g)} datasets")


if __name__ == "__main__":
    main()
