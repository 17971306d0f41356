"""An annotator logs in and labels with the keyboard alone in real Chromium."""

import pytest

from app.db import session_scope
from app.pool.service import import_pool
from app.projects.schemas import ProjectCreate
from app.projects.service import create_project
from app.users.service import create_user
from tests.data import rotten_tomatoes, to_csv

pytestmark = pytest.mark.browser


@pytest.fixture
def project_for_annotator(live_server):
    import io

    with session_scope() as session:
        admin = create_user(session, username="boss", password="password-123", role="admin")
        create_user(session, username="ann", password="password-123", role="annotator")
        project = create_project(session, created_by=admin, data=ProjectCreate(
            name="Reviews", kind="text", labels=["fresh", "rotten", "plot"], batch_size=10, members=["ann"]))
        rows = rotten_tomatoes(50) + [{"id": "evil", "text": "<script>alert(1)</script>", "category": "plot",
                                       "movie": "x"}]
        import_pool(session, project=project, fileobj=io.BytesIO(to_csv(rows, ["id", "text"])), filename="p.csv")
        return project.id


def log_in(page, base_url, username):
    page.goto(f"{base_url}/login")
    # the username field has focus (autofocus); typed before the browser has given it, a first key
    # is lost (seen as "nn" for "ann" under load)
    page.wait_for_function("document.activeElement && document.activeElement.name === 'username'")
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type("password-123")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base_url}/projects")


def press_on_card(page, key: str) -> None:
    """An annotator's key on the card on screen: after the moment a card is too new to have been
    read (static/js/app.js NEW_CARD_KEY_MS ignores keys then, as a double tap's second press), and
    after htmx has settled the previous answer (a key while it is on its way is ignored too)."""
    page.wait_for_timeout(300)
    page.keyboard.press(key)


def test_keyboard_labelling_moves_the_progress_count(page, live_server, project_for_annotator, artifacts):
    base = live_server.url
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    log_in(page, base, "ann")
    page.goto(f"{base}/projects/{project_for_annotator}/label")
    mine = page.locator("#mine-total")
    assert mine.inner_text() == "0"
    seen = []
    for n, key in enumerate(["1", "2", "3"], start=1):
        seen.append(page.locator("#card").get_attribute("data-item"))
        press_on_card(page, key)
        try:
            page.wait_for_function(f"document.querySelector('#mine-total').textContent === '{n}'", timeout=10_000)
        except Exception:
            page.screenshot(path=str(artifacts / "label-page-failure.png"))
            raise
        page.wait_for_function("!document.getElementById('work').classList.contains('htmx-request')")
    assert len(set(seen)) == 3
    assert page.locator("#project-done").inner_text() == "3"
    assert page.locator(".recent li").count() == 3
    assert page.url.endswith(f"/projects/{project_for_annotator}/label")  # swapped in place, never reloaded

    page.keyboard.press("?")
    assert page.locator("#help").is_visible()
    page.keyboard.press("Escape")
    page.keyboard.press("u")
    page.wait_for_function("document.querySelector('#mine-total').textContent === '2'")
    assert page.locator("#card").get_attribute("data-item") == seen[-1]
    page.screenshot(path=str(artifacts / "label-page.png"))
    assert dialogs == []  # no item text ran as script


def test_an_answer_given_while_the_server_is_unreachable_is_sent_once_it_is_back(page, live_server,
                                                                                  project_for_annotator):
    from sqlalchemy import select

    from app.models import Annotation

    base = live_server.url
    log_in(page, base, "ann")
    page.goto(f"{base}/projects/{project_for_annotator}/label")
    item = int(page.locator("#card").get_attribute("data-item"))
    page.context.set_offline(True)
    page.keyboard.press("2")
    page.wait_for_selector("#connection-error:not([hidden])")
    assert "kept in this page" in page.locator("#connection-error").inner_text()
    page.keyboard.press("1")  # not taken while the first answer waits: answers keep their order
    page.wait_for_timeout(500)
    page.context.set_offline(False)
    page.wait_for_function("document.querySelector('#mine-total').textContent === '1'", timeout=15_000)
    page.wait_for_selector("#connection-error", state="hidden")
    with session_scope() as session:
        answers = session.execute(select(Annotation.item_id, Annotation.label)).all()
    assert answers == [(item, "rotten")]
    assert int(page.locator("#card").get_attribute("data-item")) != item


def test_an_answer_a_proxy_turns_away_while_the_app_restarts_is_sent_again(page, live_server, project_for_annotator):
    from sqlalchemy import select

    from app.models import Annotation

    base = live_server.url
    log_in(page, base, "ann")
    page.goto(f"{base}/projects/{project_for_annotator}/label")
    item = int(page.locator("#card").get_attribute("data-item"))
    turned_away = []

    def bad_gateway(route):  # what a reverse proxy answers while the app behind it is down
        if len(turned_away) < 2:
            turned_away.append(route.request.url)
            route.fulfill(status=502, body="Bad Gateway")
        else:
            route.continue_()

    page.route("**/items/*/label", bad_gateway)
    page.keyboard.press("1")
    page.wait_for_selector("#connection-error:not([hidden])")
    assert "kept in this page" in page.locator("#connection-error").inner_text()
    page.wait_for_function("document.querySelector('#mine-total').textContent === '1'", timeout=15_000)
    assert len(turned_away) == 2
    with session_scope() as session:
        assert session.execute(select(Annotation.item_id, Annotation.label)).all() == [(item, "fresh")]


def test_an_undo_a_proxy_answers_504_to_takes_back_one_answer(page, live_server, project_for_annotator):
    """QA: the app took the undo back, the proxy in front answered 504, the page sent the undo again, and
    the app took back the answer before it too."""
    from sqlalchemy import select

    from app.models import Annotation

    base = live_server.url
    log_in(page, base, "ann")
    page.goto(f"{base}/projects/{project_for_annotator}/label")
    for n in (1, 2, 3):
        press_on_card(page, "1")
        page.wait_for_function(f"document.querySelector('#mine-total').textContent === '{n}'")
    with session_scope() as session:
        first_two = session.scalars(select(Annotation.item_id).order_by(Annotation.id).limit(2)).all()
    answered_then_lost = []

    def timeout_after_the_app_answered(route):
        if not answered_then_lost:
            answered_then_lost.append(route.fetch().status)  # the app undoes; the browser gets the proxy's 504
            route.fulfill(status=504, body="Gateway Timeout")
        else:
            route.continue_()

    page.route("**/undo", timeout_after_the_app_answered)
    # not at once: #mine-total changes in the swap, and a key before htmx settles the answer is ignored
    press_on_card(page, "u")
    page.wait_for_selector("#connection-error:not([hidden])")
    assert "Your last undo is kept in this page" in page.locator("#connection-error").inner_text()
    page.wait_for_function("document.querySelector('#connection-error').hidden", timeout=15_000)
    assert answered_then_lost == [200]
    with session_scope() as session:
        assert session.scalars(select(Annotation.item_id).order_by(Annotation.id)).all() == first_two
    assert "already taken back" in page.locator("#work").inner_text()


def test_a_double_click_on_a_label_answers_one_card(page, live_server, project_for_annotator):
    from sqlalchemy import func, select

    from app.models import Annotation

    base = live_server.url
    log_in(page, base, "ann")
    page.goto(f"{base}/projects/{project_for_annotator}/label")
    # a mouse's double click on a fast server: the first click's answer swaps in the next card, and the
    # second click lands on that card's button under the pointer
    page.locator(".label-button").first.click()
    page.wait_for_function("document.querySelector('#mine-total').textContent === '1'", polling=10)
    page.locator(".label-button").first.click()
    page.wait_for_timeout(800)
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Annotation)) == 1
    page.locator(".label-button").first.click()  # a click after the moment counts
    page.wait_for_function("document.querySelector('#mine-total').textContent === '2'")


def test_a_double_tapped_key_answers_one_card(page, live_server, project_for_annotator):
    """QA: on a fast server the first press's answer was back before a double tap's second press,
    which then answered a card that had been on screen for well under 100 ms."""
    from sqlalchemy import func, select

    from app.models import Annotation

    base = live_server.url
    log_in(page, base, "ann")
    page.goto(f"{base}/projects/{project_for_annotator}/label")
    page.wait_for_timeout(300)  # (the first card's own moment)
    page.keyboard.press("1")
    page.wait_for_timeout(100)  # a double tap: the answer is back (or still on its way, which guards too)
    page.keyboard.press("1")
    page.wait_for_timeout(800)
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Annotation)) == 1
    press_on_card(page, "1")  # a press after the moment counts
    page.wait_for_function("document.querySelector('#mine-total').textContent === '2'")


def test_a_long_item_scrolls_from_the_keyboard_on_every_card(page, live_server):
    """QA: a long item scrolled only after six Tabs (past Log out), and every new card lost that focus."""
    import io

    with session_scope() as session:
        admin = create_user(session, username="boss", password="password-123", role="admin")
        create_user(session, username="ann", password="password-123", role="annotator")
        project = create_project(session, created_by=admin, data=ProjectCreate(
            name="Long", kind="text", labels=["a", "b"], strategy="random", holdout_fraction=0, members=["ann"]))
        long_text = " ".join(f"word{n}" for n in range(3000))
        pool = to_csv([{"id": f"l{n}", "text": f"{n} {long_text}"} for n in range(3)], ["id", "text"])
        import_pool(session, project=project, fileobj=io.BytesIO(pool), filename="p.csv")
        pid = project.id
    log_in(page, live_server.url, "ann")
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{live_server.url}/projects/{pid}/label")
    for n in (1, 2):
        page.wait_for_function("document.activeElement && document.activeElement.id === 'item-body'")
        page.keyboard.press("PageDown")
        page.wait_for_function("document.getElementById('item-body').scrollTop > 0")
        press_on_card(page, "1")  # the label keys still answer with the focus on the item
        page.wait_for_function(f"document.querySelector('#mine-total').textContent === '{n}'")


def test_an_image_project_shows_its_pictures_under_the_pages_policy_and_labels_by_keyboard(browser, live_server,
                                                                                          artifacts):
    import io

    from playwright.sync_api import expect

    from tests.test_images_and_embeddings import digit_png, zip_of

    with session_scope() as session:
        admin = create_user(session, username="boss", password="password-123", role="admin")
        create_user(session, username="ann", password="password-123", role="annotator")
        project = create_project(session, created_by=admin, data=ProjectCreate(
            name="Digits", kind="image", labels=["0", "1", "2"], batch_size=10, members=["ann"]))
        pictures = zip_of({f"{i}.png": digit_png(i, side=64) for i in range(12)})
        import_pool(session, project=project, fileobj=io.BytesIO(pictures), filename="digits.zip")
        project_id = project.id
    # the page's own Content-Security-Policy (the shared `page` fixture bypasses it)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    refused = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    try:
        log_in(page, live_server.url, "ann")
        page.goto(f"{live_server.url}/projects/{project_id}/label")
        picture = page.locator("#card img.item-image")
        expect(picture).to_be_visible()
        first = page.locator("#card").get_attribute("data-item")
        page.keyboard.press("2")
        expect(page.locator("#mine-total")).to_have_text("1")
        assert page.locator("#card").get_attribute("data-item") != first
        expect(page.locator(".recent img.thumb")).to_have_count(1)
        page.wait_for_timeout(300)  # the new card's picture loads
        # decoded and drawn: a picture the policy or the server refused has no natural width
        assert picture.evaluate("img => img.complete && img.naturalWidth === 64")
        assert picture.bounding_box()["width"] >= 192  # a tiny picture is drawn larger
        page.screenshot(path=str(artifacts / "image-label-page.png"))
    finally:
        context.close()
    assert refused == []


def test_leaving_the_label_page_lets_its_card_go_and_coming_back_finds_it(page, live_server, project_for_annotator):
    """QA: a card stayed held for the whole lease (ten minutes) after its page was closed or left."""
    import time

    from sqlalchemy import select

    from app.models import Lease, utcnow

    def live_leases():
        with session_scope(write=False) as session:
            return session.scalars(select(Lease.item_id).where(Lease.expires_at > utcnow())).all()

    base = live_server.url
    log_in(page, base, "ann")
    page.goto(f"{base}/projects/{project_for_annotator}/label")
    page.keyboard.press("1")  # an answer first: the card that goes is the one htmx swapped in
    page.wait_for_function("document.querySelector('#mine-total').textContent === '1'")
    page.wait_for_function("!document.getElementById('work').classList.contains('htmx-request')")
    card = int(page.locator("#card").get_attribute("data-item"))
    assert live_leases() == [card]
    page.goto(f"{base}/projects")  # the page goes away: its beacon lets the card go
    deadline = time.monotonic() + 10
    while live_leases() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert live_leases() == []
    page.goto(f"{base}/projects/{project_for_annotator}/label")
    assert int(page.locator("#card").get_attribute("data-item")) == card
    page.reload()  # a reload too: the same card, still held
    assert int(page.locator("#card").get_attribute("data-item")) == card
    time.sleep(0.5)
    assert live_leases() == [card]


def test_a_second_tab_closing_leaves_the_first_tabs_card_held(page, live_server, project_for_annotator):
    """QA: two tabs showed one card; closing the second gave it away while the first still showed it."""
    import time

    from sqlalchemy import select

    from app.models import Lease, utcnow

    base = live_server.url
    log_in(page, base, "ann")
    page.goto(f"{base}/projects/{project_for_annotator}/label")
    card = page.locator("#card").get_attribute("data-item")
    second = page.context.new_page()
    second.goto(f"{base}/projects/{project_for_annotator}/label")
    assert second.locator("#card").get_attribute("data-item") == card
    second.close(run_before_unload=True)
    time.sleep(1.0)  # (a beacon, had one been sent, is in by now)
    with session_scope(write=False) as session:
        assert session.scalars(select(Lease.item_id).where(Lease.expires_at > utcnow())).all() == [int(card)]


def test_back_to_the_label_page_asks_for_its_card_again(page, live_server, project_for_annotator):
    """QA: Back showed the label page from the browser's cache, with a card given back and then served
    to someone else."""
    import time

    from sqlalchemy import select

    from app.labeling.service import Why, _hold
    from app.models import Item, Lease, Project, User, utcnow

    base = live_server.url
    log_in(page, base, "ann")
    page.goto(f"{base}/projects/{project_for_annotator}/label")
    card = int(page.locator("#card").get_attribute("data-item"))
    page.goto(f"{base}/projects")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with session_scope(write=False) as session:
            if not session.scalars(select(Lease.item_id).where(Lease.expires_at > utcnow())).all():
                break
        time.sleep(0.1)
    with session_scope() as session:  # the boss takes the card given back (leased to them, as if served)
        boss = session.scalars(select(User).where(User.username == "boss")).one()
        item = session.get(Item, card)
        _hold(session, project=session.get(Project, project_for_annotator), item=item, user=boss,
              why=Why("random", "random"), now=utcnow())
    page.go_back()
    page.wait_for_selector("#card")
    assert int(page.locator("#card").get_attribute("data-item")) != card
