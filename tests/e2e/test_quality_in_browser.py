"""A lead opens the Label quality page, relabels a suspicious item in place, and watches the retrain
it starts publish a new model version, without a reload."""

import time

import numpy as np
import pytest
from sqlalchemy import func, select

from app.db import session_scope
from app.labeling import service as labeling
from app.models import Item, ModelVersion, Project, QualityReport, User
from app.training.queue import queue_training
from app.users.service import create_user, issue_api_token
from tests.e2e.test_label_in_browser import log_in
from tests.test_quality import N_FLIPPED, N_HOLDOUT, N_ITEMS, _csv

pytestmark = pytest.mark.browser


def wait_until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := check()) is not None:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout}s")


def report_version(pid: int) -> int | None:
    with session_scope(write=False) as session:
        return session.scalar(select(ModelVersion.version).join(
            QualityReport, QualityReport.model_version_id == ModelVersion.id).where(QualityReport.project_id == pid))


@pytest.fixture
def reviewed_project(live_server, users):
    """Tabular cells labelled by an annotator who got some wrong; the live worker trains and scores them."""
    import httpx

    with session_scope() as session:
        create_user(session, username="lead", password="password-123", role="lead")
        create_user(session, username="ann", password="password-123", role="annotator")
        admin = create_user(session, username="boss", password="password-123", role="admin")
        token = issue_api_token(session, user=admin)
    api = httpx.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    pid = api.post("/api/v1/projects", json={
        "name": "Cells", "kind": "tabular", "labels": ["malignant", "benign"], "batch_size": 1000,
        "holdout_fraction": 0.0, "members": ["lead", "ann"]}).json()["id"]
    body, gold = _csv()
    assert api.post(f"/api/v1/projects/{pid}/items", files={"file": ("c.csv", body, "text/csv")}).status_code == 201
    flipped = set(np.random.default_rng(1).choice(np.arange(N_HOLDOUT, N_ITEMS), size=N_FLIPPED,
                                                  replace=False).tolist())
    with session_scope() as session:
        project = session.get(Project, pid)
        ann = session.scalar(select(User).where(User.username == "ann"))
        for n, item in enumerate(session.scalars(select(Item).where(Item.project_id == pid).order_by(Item.id))):
            item.is_holdout = n < N_HOLDOUT  # chosen here, not by the serving coin
            label = gold[int(item.external_id[1:])]
            if n in flipped:
                label = {"malignant": "benign", "benign": "malignant"}[label]
            labeling.annotate(session, project=project, item=item, user=ann, label=label)
        queue_training(session, project=project, n_labels=N_ITEMS - N_HOLDOUT)
    wait_until(lambda: report_version(pid), 120, "the first label-quality report")
    return pid


def test_lead_relabels_a_suspicious_item_and_sees_the_retrain(page, live_server, reviewed_project, artifacts):
    pid = reviewed_project
    log_in(page, live_server.url, "lead")
    page.goto(f"{live_server.url}/projects/{pid}/dashboard")
    page.get_by_role("link", name="Label quality").first.click()
    page.wait_for_url(f"{live_server.url}/projects/{pid}/quality")
    assert page.locator("#current-model").inner_text() == "v1"
    assert page.locator("#report-model").inner_text() == "v1"
    first = page.locator("article.suspicious").first
    item_dom_id = first.get_attribute("id")
    given = first.locator("td.given").inner_text()
    suggested = first.locator("td.suggested").inner_text()
    assert given != suggested
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads
    page.screenshot(path=str(artifacts / "label-quality.png"), full_page=True)

    first.locator("button.relabel.primary").click()
    swapped = page.locator(f"#{item_dom_id}")
    swapped.locator("text=A retrain is queued").wait_for(timeout=10_000)
    assert f"relabelled {given} → {suggested}" in " ".join(swapped.inner_text().split())

    # The worker retrains on the decision; the status line refreshes itself to the new version.
    page.wait_for_function("document.getElementById('current-model').innerText === 'v2'", timeout=60_000)
    assert page.evaluate("window.__sameDocument === true")
    with session_scope(write=False) as session:
        item_id = int(item_dom_id.removeprefix("q-"))
        item = session.get(Item, item_id)
        assert (item.adjudicated_label, item.final_label) == (suggested, suggested)
        assert session.scalar(select(func.max(ModelVersion.version)).where(ModelVersion.project_id == pid)) == 2
    # and the new report follows; the page offers to show it
    page.locator("text=A new report is ready").wait_for(timeout=60_000)
    page.get_by_role("link", name="Show it").click()
    page.wait_for_function("document.getElementById('report-model').innerText === 'v2'", timeout=10_000)
    assert page.locator(f"#{item_dom_id}").count() == 0  # the decided label is not listed again
    page.screenshot(path=str(artifacts / "label-quality-after.png"), full_page=True)

    # The item's page explains the model's prediction for it; the influence view ranks the labels.
    page.goto(f"{live_server.url}/projects/{pid}/items/{item_id}")
    page.locator("#why-helpful li a").first.wait_for(timeout=30_000)
    assert page.locator("#predicted-label").inner_text() in ("malignant", "benign")
    page.screenshot(path=str(artifacts / "why-this-prediction.png"), full_page=True)
    page.goto(f"{live_server.url}/projects/{pid}/influence")
    assert page.locator("#helpful tbody tr").count() > 0 and page.locator("#harmful tbody tr").count() > 0
    page.screenshot(path=str(artifacts / "most-influential.png"), full_page=True)
