"""The simulator: protocol, output shape, reproducibility, and the command line."""

import json

import numpy as np
import pytest
from sklearn.datasets import load_digits

from app.al.simulate import Dataset, SimulationConfig, load_dataset, simulate
from app.cli import main


@pytest.fixture(scope="module")
def digits() -> Dataset:
    data = load_digits()
    return Dataset("digits", "tabular", data.data[:600].astype(float), data.target[:600].astype(str).astype(object))


def test_result_shape_and_curve_protocol(digits):
    config = SimulationConfig(initial=20, batch_size=10, budget=60, test_fraction=0.3, repeats=2, seed=0)
    result = simulate(digits, ["random", "margin"], config=config)
    assert result["dataset"] == "digits" and set(result["summary"]) == {"random", "margin"}
    assert len(result["runs"]) == 4
    for run in result["runs"]:
        assert [p[0] for p in run["curve"]] == [20, 30, 40, 50, 60]
        assert run["aulc"] == pytest.approx(np.mean([p[1] for p in run["curve"]]))
        assert all(0 <= p[1] <= 1 and 0 <= p[2] <= 1 for p in run["curve"])
    # within a repeat every strategy starts from the same labels, so the first point agrees
    for repeat in range(2):
        firsts = {r["curve"][0][1] for r in result["runs"] if r["repeat"] == repeat}
        assert len(firsts) == 1
    summary = result["summary"]["margin"]
    aulcs = [r["aulc"] for r in result["runs"] if r["strategy"] == "margin"]
    assert summary["aulc_mean"] == pytest.approx(np.mean(aulcs))
    assert summary["aulc_std"] == pytest.approx(np.std(aulcs, ddof=1))


def test_same_seed_same_result(digits):
    config = SimulationConfig(budget=40, repeats=1, seed=3)
    a = simulate(digits, ["entropy"], config=config)
    b = simulate(digits, ["entropy"], config=config)
    assert a["runs"][0]["curve"] == b["runs"][0]["curve"]


def test_margin_beats_random_on_digits(digits):
    """Not a benchmark, a sanity check that the loop really chooses: on digits, uncertainty
    sampling clearly outperforms random by 150 labels (it does by several points)."""
    config = SimulationConfig(initial=20, batch_size=10, budget=150, repeats=3, seed=0)
    summary = simulate(digits, ["random", "margin"], config=config)["summary"]
    assert summary["margin"]["aulc_mean"] > summary["random"]["aulc_mean"]


def test_bad_configuration_and_unknown_strategy_are_refused(digits):
    with pytest.raises(ValueError, match="budget"):
        simulate(digits, ["random"], config=SimulationConfig(initial=20, budget=10))
    with pytest.raises(KeyError, match="unknown strategy"):
        simulate(digits, ["telepathy"], config=SimulationConfig(budget=30, repeats=1))


def test_cli_writes_json_and_a_plot(tmp_path):
    rows = ["label,a,b,name"] + [f"{'yes' if i % 2 else 'no'},{i % 2 + np.sin(i):.4f},{np.cos(i):.4f},n{i}"
                                 for i in range(200)]
    data = tmp_path / "toy.csv"
    data.write_text("\n".join(rows))
    out, plot = tmp_path / "result.json", tmp_path / "curves.png"
    code = main(["simulate", "--data", str(data), "--label-column", "label", "--strategies", "random,margin",
                 "--initial", "10", "--budget", "40", "--repeats", "2", "--out", str(out), "--plot", str(plot)])
    assert code == 0
    result = json.loads(out.read_text())
    assert set(result["summary"]) == {"random", "margin"} and result["kind"] == "tabular"
    assert load_dataset(data, label_column="label").feature_names == ["a", "b"]  # 'name' is not numeric
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_text_dataset_and_errors(tmp_path, capsys):
    texts = ["good fun film", "great acting", "boring slow mess", "awful plot"] * 30
    labels = ["pos", "pos", "neg", "neg"] * 30
    data = tmp_path / "t.jsonl"
    data.write_text("\n".join(json.dumps({"t": t, "y": y}) for t, y in zip(texts, labels, strict=True)))
    assert main(["simulate", "--data", str(data), "--label-column", "y", "--text-column", "t",
                 "--initial", "4", "--budget", "20", "--repeats", "1", "--out", str(tmp_path / "o.json")]) == 0
    assert main(["simulate", "--data", str(data), "--label-column", "missing", "--out", str(tmp_path / "x")]) == 2
    assert "no column 'missing'" in capsys.readouterr().err


def test_cover_first_replays_the_apps_cold_start_for_every_strategy_but_random(digits):
    """Twelve first labels for ten digits: some digit has fewer than two examples, so with
    `cover_first` margin's first batches are TypiClust's (another curve); random's never change."""
    plain = SimulationConfig(initial=12, batch_size=10, budget=52, repeats=1, seed=0)
    app_like = SimulationConfig(initial=12, batch_size=10, budget=52, repeats=1, seed=0, cover_first=True)
    a = {r["strategy"]: r["curve"] for r in simulate(digits, ["random", "margin"], config=plain)["runs"]}
    b = {r["strategy"]: r["curve"] for r in simulate(digits, ["random", "margin"], config=app_like)["runs"]}
    assert a["random"] == b["random"]
    assert a["margin"][0] == b["margin"][0] and a["margin"] != b["margin"]
