"""Every page fits a phone's 390 px: a wide table scrolls inside its panel, the menu wraps.

QA found the admin's menu 501 px wide on every page, the project page 781 px (model versions, jobs),
the dashboard 627 px (a row of buttons that did not wrap, the annotators table) and the users page
1029 px."""

import httpx
import pytest

from app.db import session_scope
from app.users.service import create_user, issue_api_token
from tests.data import rotten_tomatoes, to_csv
from tests.e2e.test_dashboard_in_browser import label_until_versions
from tests.e2e.test_label_in_browser import log_in

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}


def test_pages_fit_a_phone(browser, live_server, artifacts):
    with session_scope() as session:
        admin = create_user(session, username="boss", password="password-123", role="admin")
        token = issue_api_token(session, user=admin, name="a-token-with-a-rather-long-descriptive-name")
        for name in ("ann", "lead"):
            create_user(session, username=name, password="password-123",
                        role="annotator" if name == "ann" else "lead")
    api = httpx.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    rows = rotten_tomatoes(300, seed=5)
    gold = {r["id"]: r["category"] for r in rows}
    pid = api.post("/api/v1/projects", json={
        "name": "Reviews with a long enough name to wrap", "kind": "text", "labels": ["fresh", "rotten", "plot"],
        "batch_size": 10, "holdout_fraction": 0.2, "members": ["ann", "lead"]}).json()["id"]
    api.post(f"/api/v1/projects/{pid}/items", files={"file": ("p.csv", to_csv(rows, ["id", "text"]), "text/csv")})
    label_until_versions(api, pid, gold, 1)
    item_id = api.get(f"/api/v1/projects/{pid}/items", params={"show": "labelled"}).json()["items"][0]["id"]

    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    try:
        log_in(page, live_server.url, "boss")
        too_wide = {}
        for path in ("/projects", "/projects/new", f"/projects/{pid}", f"/projects/{pid}/dashboard",
                     f"/projects/{pid}/items", f"/projects/{pid}/items/{item_id}", f"/projects/{pid}/quality",
                     f"/projects/{pid}/label", "/admin/users", "/tokens"):
            page.goto(live_server.url + path)
            page.wait_for_load_state("networkidle")
            width = page.evaluate("document.documentElement.scrollWidth")
            if width > PHONE["width"]:
                too_wide[path] = width
                page.screenshot(path=str(artifacts / f"phone{path.replace('/', '_')}.png"), full_page=True)
        assert too_wide == {}
        # the menu wrapped rather than hid: Log out is on screen and can be pressed
        box = page.get_by_role("button", name="Log out").bounding_box()
        assert box is not None and box["x"] + box["width"] <= PHONE["width"]
    finally:
        context.close()
