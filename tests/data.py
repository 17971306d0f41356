"""Small pools for tests, built from the project's own demo data and scikit-learn's bundled sets."""

import bz2
import csv
import io
import random
from importlib import resources


def rotten_tomatoes(n: int, *, seed: int = 0) -> list[dict]:
    """`n` snippets drawn at random (the file is sorted by category), with their gold `category`."""
    raw = resources.files("app").joinpath("demo_data/rotten_tomatoes.csv.bz2").read_bytes()
    rows = [{"id": f"rt-{number}", "text": row["text"], "category": row["category"], "movie": row["movie_name"]}
            for number, row in enumerate(csv.DictReader(io.StringIO(bz2.decompress(raw).decode())), 1)
            if (row["text"] or "").strip()]
    return random.Random(seed).sample(rows, n)


def to_csv(rows: list[dict], columns: list[str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row[c] for c in columns])
    return out.getvalue().encode()
