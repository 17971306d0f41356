"""Reproduce the simulations quoted in docs/strategies.md: `labelloop simulate` on scikit-learn's
digits and on the Rotten Tomatoes snippets, 5 repeats, 20 initial labels, batches of 10 up to 300,
30% test split, seed 0. Writes JSON to docs/simulations/ and learning-curve plots to docs/img/.

    python benchmarks/simulate_docs.py [--strategies random,margin,entropy,least_confidence]
"""

import argparse
import csv
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.cli import main as labelloop  # noqa: E402


def digits_csv(path: Path) -> Path:
    from sklearn.datasets import load_digits

    data = load_digits()
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([f"p{i}" for i in range(data.data.shape[1])] + ["digit"])
        for row, target in zip(data.data, data.target, strict=True):
            writer.writerow([int(v) for v in row] + [int(target)])
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strategies", default="random,margin,entropy,least_confidence")
    parser.add_argument("--suffix", default="uncertainty", help="name part of the output files")
    args = parser.parse_args()
    (ROOT / "docs" / "simulations").mkdir(parents=True, exist_ok=True)
    (ROOT / "docs" / "img").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        runs = [("digits", ["--data", str(digits_csv(Path(tmp) / "digits.csv")), "--label-column", "digit"]),
                ("rotten_tomatoes", ["--data", str(ROOT / "app" / "demo_data" / "rotten_tomatoes.csv.bz2"),
                                     "--label-column", "category", "--text-column", "text"])]
        for name, data_args in runs:
            stem = f"{name}_{args.suffix}"
            code = labelloop(["simulate", *data_args, "--strategies", args.strategies, "--initial", "20",
                              "--batch-size", "10", "--budget", "300", "--test-fraction", "0.3", "--repeats", "5",
                              "--seed", "0", "--out", str(ROOT / "docs" / "simulations" / f"{stem}.json"),
                              "--plot", str(ROOT / "docs" / "img" / f"curves-{stem}.png")])
            if code:
                sys.exit(code)


if __name__ == "__main__":
    main()
