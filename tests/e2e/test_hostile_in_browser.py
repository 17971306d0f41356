"""Item text is untrusted: in a real browser it shows as text and runs nothing. A form posted
without the CSRF token is refused."""

import io

import pytest

from app.db import session_scope
from app.pool.service import import_pool
from app.projects.schemas import ProjectCreate
from app.projects.service import create_project
from app.users.service import create_user
from tests.e2e.test_label_in_browser import log_in

pytestmark = pytest.mark.browser
HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>"


@pytest.fixture
def hostile_project(live_server):
    with session_scope() as session:
        admin = create_user(session, username="boss", password="password-123", role="admin")
        create_user(session, username="ann", password="password-123", role="annotator")
        project = create_project(session, created_by=admin, data=ProjectCreate(
            name="<b>Bold</b> project", kind="text", labels=["<i>x</i>", "y"], members=["ann"]))
        body = "id,text,note\nevil,\"" + HOSTILE.replace('"', '""') + "\",\"<u>meta</u>\"\n"
        import_pool(session, project=project, fileobj=io.BytesIO(body.encode()), filename="p.csv")
        return project.id


def test_hostile_item_text_is_shown_as_text(page, live_server, hostile_project, artifacts):
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    log_in(page, live_server.url, "ann")
    page.goto(f"{live_server.url}/projects/{hostile_project}/label")
    assert page.locator(".item-text").inner_text() == HOSTILE
    assert page.locator(".item-body script").count() == 0 and page.locator(".item-body img").count() == 0
    assert page.locator("h1").inner_text() == "<b>Bold</b> project"
    assert "<i>x</i>" in page.locator(".label-buttons").inner_text()
    assert page.locator("dl.meta dd").inner_text() == "<u>meta</u>"
    page.wait_for_timeout(300)
    page.screenshot(path=str(artifacts / "hostile-item.png"))
    assert dialogs == []


def test_a_form_posted_without_the_csrf_token_is_refused(page, live_server, hostile_project):
    log_in(page, live_server.url, "ann")
    page.goto(f"{live_server.url}/projects/{hostile_project}/label")
    item = page.locator("#card").get_attribute("data-item")
    # A plain HTML form, as another site would post it: the session cookie goes along, the token does not.
    with page.expect_navigation():
        page.evaluate("""([project, item]) => {
            const form = document.createElement('form');
            form.method = 'post';
            form.action = `/projects/${project}/items/${item}/label`;
            const input = document.createElement('input');
            input.name = 'label'; input.value = 'y';
            form.appendChild(input);
            document.body.appendChild(form);
            form.submit();
        }""", [hostile_project, item])
    assert "did not come from labelloop" in page.locator("main").inner_text()
    page.goto(f"{live_server.url}/projects/{hostile_project}/label")
    assert page.locator("#mine-total").inner_text() == "0"  # nothing was recorded
    # the same form with the page's token goes through
    token = page.evaluate("JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRF-Token']")
    response = page.request.post(f"{live_server.url}/projects/{hostile_project}/items/{item}/label",
                                 form={"label": "y", "csrf_token": token})
    assert response.status == 200
    page.goto(f"{live_server.url}/projects/{hostile_project}/label")
    assert page.locator("#mine-total").inner_text() == "1"


def test_the_pages_work_under_their_content_security_policy(browser, live_server, hostile_project):
    # the shared `page` fixture bypasses the policy for Playwright's own waits; this one does not
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    refused = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda e: refused.append(str(e)))
    try:
        log_in(page, live_server.url, "boss")
        page.goto(f"{live_server.url}/projects/{hostile_project}/label")
        page.keyboard.press("2")  # the keyboard script and htmx, both from /static
        expect(page.locator("#mine-total")).to_have_text("1")
        page.keyboard.press("?")
        expect(page.locator("#help")).to_be_visible()
        page.goto(f"{live_server.url}/projects/{hostile_project}/dashboard")
        expect(page.locator("#chart-balance")).to_be_visible()
        page.wait_for_timeout(500)  # the charts draw from the page's JSON block
        assert page.locator("#chart-balance").evaluate("c => c.width > 0")
        page.goto(f"{live_server.url}/projects/{hostile_project}")
        expect(page.locator("#upload-form")).to_be_visible()
    finally:
        context.close()
    assert refused == []


def test_the_api_reference_renders_from_vendored_files_under_the_sites_policy(page, live_server):
    """QA: /docs loaded Swagger UI from a CDN: a blank page on a machine without internet."""
    errors, outside = [], []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("request", lambda request: outside.append(request.url)
            if not request.url.startswith(live_server.url) and not request.url.startswith("data:") else None)
    page.goto(f"{live_server.url}/docs")
    page.wait_for_selector(".opblock", timeout=15_000)
    assert page.locator(".opblock").count() > 20
    assert errors == [] and outside == []
