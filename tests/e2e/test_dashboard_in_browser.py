"""A lead watches the dashboard while an annotator labels: the learning curve gains a point after the
worker's retrain, without a reload."""

import os
import time
from pathlib import Path

import httpx
import pytest

from app.db import session_scope
from app.users.service import create_user, issue_api_token
from tests.data import rotten_tomatoes, to_csv
from tests.e2e.test_label_in_browser import log_in

pytestmark = pytest.mark.browser
DOCS = Path(__file__).resolve().parents[2] / "docs"


def label_until_versions(api, pid, gold, versions: int, timeout: float = 60.0) -> None:
    """Label through the API until the worker has published `versions` models with holdout scores."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        curve = api.get(f"/api/v1/projects/{pid}/stats").json()["learning_curve"]
        if sum(1 for p in curve if p["accuracy"] is not None) >= versions:
            return
        item = api.get(f"/api/v1/projects/{pid}/next")
        if item.status_code == 200:
            body = item.json()
            api.post(f"/api/v1/items/{body['id']}/annotations", json={"label": gold[body["external_id"]]})
        else:
            time.sleep(0.2)
    raise AssertionError(f"no {versions} scored model versions within {timeout}s")


def test_learning_curve_grows_without_a_reload(page, live_server, artifacts):
    with session_scope() as session:
        create_user(session, username="lead", password="password-123", role="lead")
        admin = create_user(session, username="boss", password="password-123", role="admin")
        token = issue_api_token(session, user=admin)
    api = httpx.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    rows = rotten_tomatoes(1000, seed=11)
    gold = {r["id"]: r["category"] for r in rows}
    pid = api.post("/api/v1/projects", json={
        "name": "Reviews", "kind": "text", "labels": ["fresh", "rotten", "plot"], "batch_size": 10,
        "holdout_fraction": 0.3, "members": ["lead"]}).json()["id"]
    api.post(f"/api/v1/projects/{pid}/items", files={"file": ("p.csv", to_csv(rows, ["id", "text"]), "text/csv")})
    label_until_versions(api, pid, gold, 2)

    log_in(page, live_server.url, "lead")
    page.goto(f"{live_server.url}/projects/{pid}/dashboard")
    page.wait_for_function("document.getElementById('chart-curve').dataset.points !== undefined")
    before = int(page.locator("#chart-curve").get_attribute("data-points"))
    assert before >= 2
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads

    label_until_versions(api, pid, gold, before + 1)
    page.wait_for_function(f"Number(document.getElementById('chart-curve').dataset.points) > {before}",
                           timeout=20_000)
    assert page.evaluate("window.__sameDocument === true")
    assert page.locator("#fig-accuracy").inner_text().endswith("%")
    # each point's tooltip names its model and the holdout it was measured on (the holdout grows)
    last = api.get(f"/api/v1/projects/{pid}/stats").json()["learning_curve"][-1]
    tooltip = page.evaluate("""() => { const chart = window.labelloopCharts['chart-curve'];
        const points = chart.data.datasets[0].data, raw = points[points.length - 1];
        return chart.options.plugins.tooltip.callbacks.afterLabel({datasetIndex: 0, raw}); }""")
    assert tooltip == f"model v{last['version']}, on the {last['holdout_n']} holdout items labelled when it was trained"
    page.wait_for_timeout(500)
    page.screenshot(path=str(artifacts / "dashboard.png"), full_page=True)
    if os.environ.get("LABELLOOP_UPDATE_DOCS"):  # refresh the README's picture on purpose, not on every run
        DOCS.mkdir(exist_ok=True)
        page.screenshot(path=str(DOCS / "dashboard.png"), full_page=True)


def test_an_empty_project_says_what_each_chart_waits_for(page, live_server):
    with session_scope() as session:
        admin = create_user(session, username="boss", password="password-123", role="admin")
        token = issue_api_token(session, user=admin)
    api = httpx.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    pid = api.post("/api/v1/projects", json={"name": "Empty", "kind": "text", "labels": ["a", "b"]}).json()["id"]
    log_in(page, live_server.url, "boss")
    page.goto(f"{live_server.url}/projects/{pid}/dashboard")
    page.wait_for_function("document.getElementById('chart-curve').dataset.points !== undefined")
    assert page.locator("#chart-curve-empty").inner_text() == "The curve starts with the first model."
    assert page.locator("#chart-balance-empty").inner_text().startswith("No items yet")
    assert page.locator("#chart-map-empty").is_visible() and page.locator("#chart-uncertainty-empty").is_visible()
