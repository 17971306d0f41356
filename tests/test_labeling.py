"""Serving, leases, double submits, skip and undo, through the API."""

from datetime import timedelta

from sqlalchemy import select, update

from app.db import session_scope
from app.models import Annotation, Item, Lease, User, utcnow


def setup_project(users, n_items=5, **project):
    """An admin's project with a small pool; annotators made with `annotator` join it."""
    _, admin_token = users.create("admin", "admin")
    admin = users.api(admin_token)
    body = {"name": "P", "kind": "text", "labels": ["yes", "no"], **project}
    pid = admin.post("/api/v1/projects", json=body).json()["id"]
    pool = "text\n" + "".join(f"item {i}\n" for i in range(n_items))
    assert admin.post(f"/api/v1/projects/{pid}/items", files={"file": ("p.csv", pool.encode(), "text/csv")}
                      ).status_code == 201
    return admin, pid


def annotator(users, name, project_id):
    client = users.api(users.create(name, "annotator")[1])
    users.join(project_id, name)
    return client


def test_a_leased_item_is_not_served_to_anyone_else(users):
    admin, pid = setup_project(users, n_items=3)
    a, b = annotator(users, "a", pid), annotator(users, "b", pid)
    seen = {a.get(f"/api/v1/projects/{pid}/next").json()["id"], b.get(f"/api/v1/projects/{pid}/next").json()["id"],
            admin.get(f"/api/v1/projects/{pid}/next").json()["id"]}
    assert len(seen) == 3
    assert annotator(users, "c", pid).get(f"/api/v1/projects/{pid}/next").status_code == 204


def test_asking_again_returns_the_item_already_held(users):
    _, pid = setup_project(users)
    a = annotator(users, "a", pid)
    first = a.get(f"/api/v1/projects/{pid}/next").json()
    again = a.get(f"/api/v1/projects/{pid}/next").json()
    assert first["id"] == again["id"] and first["why"] == again["why"]


def test_an_expired_lease_returns_the_item_to_the_queue(users):
    _, pid = setup_project(users, n_items=1)
    a, b = annotator(users, "a", pid), annotator(users, "b", pid)
    item = a.get(f"/api/v1/projects/{pid}/next").json()
    assert b.get(f"/api/v1/projects/{pid}/next").status_code == 204
    with session_scope() as session:
        session.execute(update(Lease).values(expires_at=utcnow() - timedelta(minutes=1)))
    assert b.get(f"/api/v1/projects/{pid}/next").json()["id"] == item["id"]
    # a's late answer on the item b now holds is kept (UX.md: a lease expiring never loses a label),
    # and so is b's, given on the card b was served: the item gets one opinion more than asked for
    assert a.post(f"/api/v1/items/{item['id']}/annotations", json={"label": "yes"}).status_code == 201
    assert b.post(f"/api/v1/items/{item['id']}/annotations", json={"label": "no"}).status_code == 201
    with session_scope() as session:
        stored = session.get(Item, item["id"])
        assert (stored.n_annotations, stored.state) == (2, "done")
    # someone never served the item cannot add to it
    c = annotator(users, "c", pid)
    refused = c.post(f"/api/v1/items/{item['id']}/annotations", json={"label": "yes"})
    assert refused.status_code == 409 and "already has every answer it needs" in refused.json()["detail"]
    assert "next one" not in refused.json()["detail"]  # (QA: an API answer carries no next item)


def test_a_late_answer_on_an_expired_lease_nobody_took_is_kept(users):
    _, pid = setup_project(users, n_items=1)
    a = annotator(users, "a", pid)
    item = a.get(f"/api/v1/projects/{pid}/next").json()
    with session_scope() as session:
        session.execute(update(Lease).values(expires_at=utcnow() - timedelta(minutes=1)))
    assert a.post(f"/api/v1/items/{item['id']}/annotations", json={"label": "yes"}).status_code == 201


def test_double_submit_creates_one_annotation_and_a_change_updates_it(users):
    _, pid = setup_project(users)
    a = annotator(users, "a", pid)
    item = a.get(f"/api/v1/projects/{pid}/next").json()
    first = a.post(f"/api/v1/items/{item['id']}/annotations", json={"label": "yes"})
    second = a.post(f"/api/v1/items/{item['id']}/annotations", json={"label": "yes"})
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    changed = a.post(f"/api/v1/items/{item['id']}/annotations", json={"label": "no"})
    assert changed.status_code == 200 and changed.json()["label"] == "no"
    with session_scope(write=False) as session:
        assert session.scalars(select(Annotation.label)).all() == ["no"]


def test_a_completed_item_refuses_another_annotator(users):
    _, pid = setup_project(users, n_items=2)
    a, b = annotator(users, "a", pid), annotator(users, "b", pid)
    item = a.get(f"/api/v1/projects/{pid}/next").json()
    a.post(f"/api/v1/items/{item['id']}/annotations", json={"label": "yes"})
    refused = b.post(f"/api/v1/items/{item['id']}/annotations", json={"label": "no"})
    assert refused.status_code == 409 and "already has every answer it needs" in refused.json()["detail"]


def test_skip_is_not_served_again_to_the_same_person_but_is_to_others(users):
    _, pid = setup_project(users, n_items=1)
    a, b = annotator(users, "a", pid), annotator(users, "b", pid)
    item = a.get(f"/api/v1/projects/{pid}/next").json()
    skipped = a.post(f"/api/v1/items/{item['id']}/skip")
    assert skipped.status_code == 201 and skipped.json()["skipped"] and skipped.json()["label"] is None
    assert a.get(f"/api/v1/projects/{pid}/next").status_code == 204
    assert b.get(f"/api/v1/projects/{pid}/next").json()["id"] == item["id"]


def test_undo_brings_the_item_back_first(users):
    _, pid = setup_project(users, n_items=5)
    a = annotator(users, "a", pid)
    first = a.get(f"/api/v1/projects/{pid}/next").json()
    a.post(f"/api/v1/items/{first['id']}/annotations", json={"label": "yes"})
    second = a.get(f"/api/v1/projects/{pid}/next").json()
    assert second["id"] != first["id"]
    undone = a.post(f"/api/v1/projects/{pid}/undo")
    assert undone.status_code == 200 and undone.json()["id"] == first["id"]
    assert a.get(f"/api/v1/projects/{pid}/next").json()["id"] == first["id"]
    with session_scope(write=False) as session:
        assert session.scalars(select(Annotation)).all() == []
    a.post(f"/api/v1/items/{first['id']}/annotations", json={"label": "no"})
    assert a.get(f"/api/v1/projects/{pid}/next").json()["id"] == second["id"]
    assert annotator(users, "b", pid).post(f"/api/v1/projects/{pid}/undo").status_code == 204


def test_several_annotations_per_item_go_to_different_people(users):
    _, pid = setup_project(users, n_items=1, annotations_per_item=2)
    a, b, c = annotator(users, "a", pid), annotator(users, "b", pid), annotator(users, "c", pid)
    item_a = a.get(f"/api/v1/projects/{pid}/next").json()
    item_b = b.get(f"/api/v1/projects/{pid}/next").json()
    assert item_a["id"] == item_b["id"]
    assert c.get(f"/api/v1/projects/{pid}/next").status_code == 204  # two leases fill both places
    a.post(f"/api/v1/items/{item_a['id']}/annotations", json={"label": "yes"})
    assert a.get(f"/api/v1/projects/{pid}/next").status_code == 204  # never twice to the same person
    b.post(f"/api/v1/items/{item_b['id']}/annotations", json={"label": "yes"})
    assert c.get(f"/api/v1/projects/{pid}/next").status_code == 204  # complete


def test_majority_label_and_ties(users):
    from app.models import Item

    _, pid = setup_project(users, n_items=1, annotations_per_item=3, labels=["yes", "no"])
    people = [annotator(users, n, pid) for n in "abc"]
    item = people[0].get(f"/api/v1/projects/{pid}/next").json()
    for person, label in zip(people[:2], ["yes", "no"], strict=True):
        person.get(f"/api/v1/projects/{pid}/next")
        person.post(f"/api/v1/items/{item['id']}/annotations", json={"label": label})
    with session_scope(write=False) as session:
        assert session.get(Item, item["id"]).final_label is None  # a tie trains nothing
    people[2].get(f"/api/v1/projects/{pid}/next")
    people[2].post(f"/api/v1/items/{item['id']}/annotations", json={"label": "no"})
    with session_scope(write=False) as session:
        stored = session.get(Item, item["id"])
        assert (stored.final_label, stored.state, stored.n_annotations) == ("no", "done", 3)


def test_the_training_label_counter_follows_every_kind_of_change(users):
    """Answers, changed answers, skips, undos, ties between two annotators and a lead's decisions,
    in a random order: the project's counter always equals a count of the training labels."""
    import random

    from sqlalchemy import func

    from app.models import Item, Project

    _, admin_token = users.create("boss", "admin")
    admin = users.api(admin_token)
    pid = admin.post("/api/v1/projects", json={
        "name": "Count", "kind": "text", "labels": ["a", "b"], "annotations_per_item": 2,
        "holdout_fraction": 0.3, "batch_size": 1000}).json()["id"]
    pool = "text\n" + "".join(f"item number {i}\n" for i in range(40))
    admin.post(f"/api/v1/projects/{pid}/items", files={"file": ("p.csv", pool.encode(), "text/csv")})
    clients = []
    for name in ("ann", "bob"):
        clients.append(users.api(users.create(name, "annotator")[1]))
        users.join(pid, name)

    def check():
        with session_scope(write=False) as session:
            counted = session.scalar(select(func.count()).select_from(Item).where(
                Item.project_id == pid, Item.final_label.is_not(None), Item.is_holdout.is_(False)))
            assert session.get(Project, pid).n_training_labels == counted

    rng = random.Random(4)
    answered = []
    for _ in range(120):
        api = rng.choice(clients)
        move = rng.random()
        if move < 0.6:
            item = api.get(f"/api/v1/projects/{pid}/next")
            if item.status_code == 200:
                item_id = item.json()["id"]
                api.post(f"/api/v1/items/{item_id}/annotations", json={"label": rng.choice("ab")})
                answered.append(item_id)
        elif move < 0.7 and answered:
            api.post(f"/api/v1/items/{rng.choice(answered)}/annotations", json={"label": rng.choice("ab")})
        elif move < 0.8:
            item = api.get(f"/api/v1/projects/{pid}/next")
            if item.status_code == 200:
                api.post(f"/api/v1/items/{item.json()['id']}/skip")
        elif move < 0.9:
            api.post(f"/api/v1/projects/{pid}/undo")
        elif answered:
            admin.post(f"/api/v1/items/{rng.choice(answered)}/adjudication", json={"label": rng.choice("ab")})
        check()
    with session_scope(write=False) as session:
        assert session.get(Project, pid).n_training_labels > 0


def test_time_away_from_a_card_on_an_undo_is_not_counted_on_it(users):
    """QA B11: answer A after 2 s, look at B for 3 s, undo, spend 20 s redoing A, then 3 s more on B: B took 6 s,
    not 26, and A 22 s."""
    from app.labeling import service as labeling
    from app.models import Project, User

    _, pid = setup_project(users, n_items=5)
    annotator(users, "a", pid)
    t0 = utcnow()

    def at(seconds):
        return t0 + timedelta(seconds=seconds)

    def step(do):
        with session_scope() as session:
            project = session.get(Project, pid)
            user = session.scalar(select(User).where(User.username == "a"))
            return do(session, project, user)

    def answer(seconds, label="yes"):
        def do(session, project, user):
            served = labeling.next_item(session, project=project, user=user, now=at(seconds))
            labeling.annotate(session, project=project, item=served.item, user=user, label=label, now=at(seconds))
            return served.item.id
        return step(do)

    def show(seconds):
        return step(lambda session, project, user:
                    labeling.next_item(session, project=project, user=user, now=at(seconds)).item.id)

    step(lambda session, project, user: labeling.next_item(session, project=project, user=user, now=at(0)))
    first = answer(2)
    second = show(2)
    assert step(lambda s, p, u: labeling.undo_last(s, project=p, user=u, now=at(5)).item.id) == first
    assert answer(25, "no") == first
    assert show(25) == second
    assert answer(28) == second
    # the same after changing an answer picked under Your last answers: 5 s + 5 s on the third card, 40 s away
    third = show(28)
    step(lambda s, p, u: labeling.answer_again(s, project=p, user=u, item=s.get(Item, first), now=at(33)))
    step(lambda s, p, u: labeling.annotate(s, project=p, item=s.get(Item, first), user=u, label="yes",
                                           now=at(73)))
    assert show(73) == third
    assert answer(78) == third
    with session_scope(write=False) as session:
        seconds = dict(session.execute(select(Annotation.item_id, Annotation.seconds_spent)).all())
    assert round(seconds[second], 3) == 6.0
    assert round(seconds[third], 3) == 10.0
    # QA: the undone answer's first look (2 s) counts with the 20 s of the second, and the 40 s spent
    # changing it later under Your last answers are time on it too
    assert round(seconds[first], 3) == 2.0 + 20.0 + 40.0


def _two_answers(users):
    """(project id, annotator a's client, a's two answers through the API, oldest first)."""
    _, pid = setup_project(users, n_items=5)
    a = annotator(users, "a", pid)
    answers = []
    for label in ("yes", "no"):
        item = a.get(f"/api/v1/projects/{pid}/next").json()
        answers.append(a.post(f"/api/v1/items/{item['id']}/annotations", json={"label": label}).json())
    return pid, a, answers


def test_an_undo_sent_twice_takes_back_one_answer(users):
    """QA: a proxy's 504 made the page send undo again, and the second took back the answer before."""
    pid, a, answers = _two_answers(users)
    undo = a.post(f"/api/v1/projects/{pid}/undo", params={"answer_id": answers[1]["id"]})
    assert undo.status_code == 200 and undo.json()["id"] == answers[1]["item_id"]
    again = a.post(f"/api/v1/projects/{pid}/undo", params={"answer_id": answers[1]["id"]})
    assert again.status_code == 409 and "already taken back" in again.json()["detail"]
    with session_scope(write=False) as session:
        assert session.scalars(select(Annotation.id)).all() == [answers[0]["id"]]


def test_a_taken_back_answers_id_is_never_given_to_the_next_answer(users):
    """QA: SQLite gave the id of an answer taken back (the newest row) to the next answer, so an API
    client's undo naming the first took back the second."""
    pid, a, answers = _two_answers(users)
    assert a.post(f"/api/v1/projects/{pid}/undo", params={"answer_id": answers[1]["id"]}).status_code == 200
    item = a.get(f"/api/v1/projects/{pid}/next").json()
    again = a.post(f"/api/v1/items/{item['id']}/annotations", json={"label": "yes"}).json()
    assert again["id"] > answers[1]["id"]
    stale = a.post(f"/api/v1/projects/{pid}/undo", params={"answer_id": answers[1]["id"]})
    assert stale.status_code == 409 and "already taken back" in stale.json()["detail"]
    with session_scope(write=False) as session:
        assert session.scalars(select(Annotation.id).order_by(Annotation.id)).all() == [answers[0]["id"], again["id"]]


def test_an_undo_from_a_page_that_missed_a_later_answer_says_so(users):
    """QA: an undo from a second tab, opened before the latest answer was given in the first, said the
    undo had 'reached the server twice', though nothing had been undone at all."""
    pid, a, answers = _two_answers(users)
    stale = a.post(f"/api/v1/projects/{pid}/undo", params={"answer_id": answers[0]["id"]})
    with session_scope(write=False) as session:
        latest = session.get(Item, answers[1]["item_id"]).external_id
        assert session.scalars(select(Annotation.id).order_by(Annotation.id)).all() == [a["id"] for a in answers]
    assert stale.status_code == 409
    assert "Nothing was undone" in stale.json()["detail"] and f"#{latest}" in stale.json()["detail"]


def _skipped_by_a_then_served_to_b(users):
    """Annotator a skips an item; b, labelling the others "no", is served it and holds it."""
    _, pid = setup_project(users, n_items=3, strategy="random", holdout_fraction=0)
    a, b = annotator(users, "a", pid), annotator(users, "b", pid)
    item = a.get(f"/api/v1/projects/{pid}/next").json()
    assert a.post(f"/api/v1/items/{item['id']}/skip").status_code == 201
    while (served := b.get(f"/api/v1/projects/{pid}/next").json())["id"] != item["id"]:
        b.post(f"/api/v1/items/{served['id']}/annotations", json={"label": "no"})
    return pid, a, b, item


def test_a_skip_taken_back_on_an_item_others_finished_does_not_serve_it_again(users):
    """QA: undoing a skip (or picking it under Your last answers) re-served an item another annotator had
    finished; the answer then made a tie that unset their label."""
    pid, a, b, item = _skipped_by_a_then_served_to_b(users)
    assert b.post(f"/api/v1/items/{item['id']}/annotations", json={"label": "yes"}).status_code == 201
    undone = a.post(f"/api/v1/projects/{pid}/undo")
    assert undone.status_code in (200, 204) and (undone.status_code == 204 or undone.json()["id"] != item["id"])
    with session_scope(write=False) as session:
        stored = session.get(Item, item["id"])
        assert (stored.final_label, stored.n_annotations) == ("yes", 1)
        assert not session.scalars(select(Lease).where(Lease.item_id == item["id"])).all()


def test_a_skip_taken_back_while_someone_else_holds_the_item_does_not_serve_it_to_both(users, client):
    """QA: A skipped X, B was served X, A undid the skip (or picked it under Your last answers) and
    was served X too; both answered, and the one-opinion item ended a tie without a label."""
    from tests.test_pages import login

    pid, a, b, item = _skipped_by_a_then_served_to_b(users)
    csrf = login(client, "a")
    page = client.post(f"/projects/{pid}/items/{item['id']}/change", headers={"X-CSRF-Token": csrf})
    assert "Someone else is labelling" in page.text
    undone = a.post(f"/api/v1/projects/{pid}/undo")
    assert undone.status_code == 204 or undone.json()["id"] != item["id"]
    with session_scope(write=False) as session:
        holders = session.scalars(select(User.username).join(Lease, Lease.user_id == User.id)
                                  .where(Lease.item_id == item["id"])).all()
        assert holders == ["b"]
    assert b.post(f"/api/v1/items/{item['id']}/annotations", json={"label": "yes"}).status_code == 201
    with session_scope(write=False) as session:
        stored = session.get(Item, item["id"])
        assert (stored.final_label, stored.n_annotations) == ("yes", 1)


def test_a_card_left_open_for_hours_still_keeps_its_answer(users):
    """QA: the worker dropped leases an hour after they expired, and the answer on such a card was refused."""
    from app.worker.runner import drop_expired_leases

    _, pid = setup_project(users, n_items=1, holdout_fraction=0)
    a, b = annotator(users, "a", pid), annotator(users, "b", pid)
    item = a.get(f"/api/v1/projects/{pid}/next").json()
    with session_scope() as session:
        session.execute(update(Lease).values(expires_at=utcnow() - timedelta(hours=3)))
    drop_expired_leases()
    assert b.get(f"/api/v1/projects/{pid}/next").json()["id"] == item["id"]
    assert b.post(f"/api/v1/items/{item['id']}/annotations", json={"label": "yes"}).status_code == 201
    assert a.post(f"/api/v1/items/{item['id']}/annotations", json={"label": "yes"}).status_code == 201
    with session_scope() as session:
        session.execute(update(Lease).values(expires_at=utcnow() - timedelta(days=8)))
    drop_expired_leases()
    with session_scope(write=False) as session:
        assert session.scalars(select(Lease)).all() == []


def test_after_an_undo_the_undone_card_comes_first_however_long_its_first_look(users):
    """Found on PostgreSQL: the undone card's served_at moves back by its first look (10 s here), which
    made the card put aside look newer, and it came back first."""
    from app.labeling import service as labeling
    from app.models import Project, User

    _, pid = setup_project(users, n_items=5)
    annotator(users, "a", pid)
    t0 = utcnow()

    def step(do):
        with session_scope() as session:
            return do(session, session.get(Project, pid), session.scalar(select(User).where(User.username == "a")))

    def at(seconds):
        return t0 + timedelta(seconds=seconds)

    first = step(lambda s, p, u: labeling.next_item(s, project=p, user=u, now=at(0)).item.id)
    step(lambda s, p, u: labeling.annotate(s, project=p, item=s.get(Item, first), user=u, label="yes", now=at(10)))
    second = step(lambda s, p, u: labeling.next_item(s, project=p, user=u, now=at(10)).item.id)
    assert step(lambda s, p, u: labeling.undo_last(s, project=p, user=u, now=at(11)).item.id) == first
    assert step(lambda s, p, u: labeling.next_item(s, project=p, user=u, now=at(12)).item.id) == first
    step(lambda s, p, u: labeling.annotate(s, project=p, item=s.get(Item, first), user=u, label="no", now=at(14)))
    assert step(lambda s, p, u: labeling.next_item(s, project=p, user=u, now=at(14)).item.id) == second


def _card_on_the_label_page(client, pid) -> tuple[int, str]:
    """(item id, held-until stamp) of the card the label page shows."""
    import re

    page = client.get(f"/projects/{pid}/label")
    found = re.search(r'data-item="(\d+)" data-held-until="([^"]+)"', page.text)
    assert found, page.text[:500]
    return int(found[1]), found[2]


def test_a_label_page_that_goes_away_lets_its_card_go_at_once(users, client):
    """QA: a lead who opened the Label page and went back to the dashboard held an item for the whole
    lease (ten minutes), and no one else was served it."""
    from tests.test_pages import login

    admin, pid = setup_project(users, n_items=1)
    users.create("lead", "lead")
    users.join(pid, "lead")
    b = annotator(users, "b", pid)
    csrf = login(client, "lead")
    item_id, held_until = _card_on_the_label_page(client, pid)
    assert b.get(f"/api/v1/projects/{pid}/next").status_code == 204  # held by the lead's page
    # the page's beacon as it goes away: a form with the CSRF token, as navigator.sendBeacon sends it
    assert client.post(f"/projects/{pid}/release", data={"held_until": held_until}).status_code == 403
    gone = client.post(f"/projects/{pid}/release", data={"held_until": held_until, "csrf_token": csrf})
    assert gone.status_code == 204
    assert b.get(f"/api/v1/projects/{pid}/next").json()["id"] == item_id
    # the lead's answer on the card, restored from the browser's cache, is still kept
    answered = client.post(f"/projects/{pid}/items/{item_id}/label", data={"label": "yes"},
                           headers={"X-CSRF-Token": csrf, "HX-Request": "true"})
    assert answered.status_code == 200 and "already" not in answered.text
    with session_scope(write=False) as session:
        assert session.get(Item, item_id).n_annotations == 1


def test_a_reload_keeps_the_card_whichever_reaches_the_server_first(users, client):
    from tests.test_pages import login

    _, pid = setup_project(users, n_items=3, strategy="random", holdout_fraction=0)  # (no holdout coin)
    users.create("a", "annotator")
    users.join(pid, "a")
    b = annotator(users, "b", pid)
    csrf = login(client, "a")
    head = b.get(f"/api/v1/projects/{pid}/next").json()["id"]  # b holds the head of the queue
    first, stamp = _card_on_the_label_page(client, pid)
    # the reload's request first, then the old page's beacon: the card served again is kept
    again, _ = _card_on_the_label_page(client, pid)
    assert again == first
    assert client.post(f"/projects/{pid}/release", data={"held_until": stamp, "csrf_token": csrf}).status_code == 204
    with session_scope(write=False) as session:
        assert session.scalar(select(Lease.expires_at).where(Lease.item_id == first)) > utcnow()
    # the beacon first: the card is let go, and the reloaded page gets that card back (no one took it),
    # not the head of the queue, which b has given back meanwhile
    _, stamp = _card_on_the_label_page(client, pid)
    client.post(f"/projects/{pid}/release", data={"held_until": stamp, "csrf_token": csrf})
    assert b.post(f"/api/v1/projects/{pid}/release").status_code == 204
    assert _card_on_the_label_page(client, pid)[0] == first != head
    # ...unless someone took it meanwhile: then the page shows another item
    _, stamp = _card_on_the_label_page(client, pid)
    client.post(f"/projects/{pid}/release", data={"held_until": stamp, "csrf_token": csrf})
    assert b.get(f"/api/v1/projects/{pid}/next").json()["id"] == head  # b's own card comes back to b
    assert annotator(users, "c", pid).get(f"/api/v1/projects/{pid}/next").json()["id"] == first
    assert _card_on_the_label_page(client, pid)[0] not in (first, head)


def test_an_api_client_gives_back_its_items(users):
    _, pid = setup_project(users, n_items=1)
    a, b = annotator(users, "a", pid), annotator(users, "b", pid)
    item = a.get(f"/api/v1/projects/{pid}/next").json()
    assert b.get(f"/api/v1/projects/{pid}/next").status_code == 204
    assert b.post(f"/api/v1/projects/{pid}/release").status_code == 204  # b holds nothing: a keeps it
    assert b.get(f"/api/v1/projects/{pid}/next").status_code == 204
    assert a.post(f"/api/v1/projects/{pid}/release").status_code == 204
    assert b.get(f"/api/v1/projects/{pid}/next").json()["id"] == item["id"]
    assert annotator(users, "c", pid).post(f"/api/v1/projects/{pid + 1}/release").status_code == 404


def test_after_an_undo_leaving_and_coming_back_finds_the_undone_card(users, client):
    """QA: after an undo, leaving and coming back showed the card the undo had put aside, not the one
    taken back (both let go at the same moment, and the order between them was left to chance)."""
    from tests.test_pages import login

    _, pid = setup_project(users, n_items=4)
    users.create("a", "annotator")
    users.join(pid, "a")
    csrf = login(client, "a")
    answered, _ = _card_on_the_label_page(client, pid)
    htmx = {"X-CSRF-Token": csrf, "HX-Request": "true"}
    client.post(f"/projects/{pid}/items/{answered}/label", data={"label": "yes"}, headers=htmx)
    aside, _ = _card_on_the_label_page(client, pid)
    undone = client.post(f"/projects/{pid}/undo", headers=htmx)
    assert "was taken back" in undone.text
    back, stamp = _card_on_the_label_page(client, pid)
    assert back == answered != aside
    client.post(f"/projects/{pid}/release", data={"held_until": stamp, "csrf_token": csrf})
    assert _card_on_the_label_page(client, pid)[0] == answered


def test_an_undo_from_a_stale_tab_takes_back_nothing_even_when_the_answer_id_was_given_again(users, client):
    """QA: tab 1 took an answer back and answered again; SQLite gave the new answer the old one's id,
    and tab 2's undo, naming that id, took the new answer back."""
    import html
    import json
    import re

    from tests.test_pages import login

    _, pid = setup_project(users, n_items=4)
    users.create("a", "annotator")
    users.join(pid, "a")
    csrf = login(client, "a")
    htmx = {"X-CSRF-Token": csrf, "HX-Request": "true"}

    def undo_values(page: str) -> dict:
        found = re.search(r"""hx-post="/projects/\d+/undo" hx-vals='([^']+)'""", page)
        return json.loads(html.unescape(found[1]))

    for _ in range(2):
        item, _ = _card_on_the_label_page(client, pid)
        client.post(f"/projects/{pid}/items/{item}/label", data={"label": "yes"}, headers=htmx)
    second_tab = undo_values(client.get(f"/projects/{pid}/label").text)
    client.post(f"/projects/{pid}/undo", data=undo_values(client.get(f"/projects/{pid}/label").text), headers=htmx)
    again, _ = _card_on_the_label_page(client, pid)
    client.post(f"/projects/{pid}/items/{again}/label", data={"label": "no"}, headers=htmx)
    with session_scope(write=False) as session:
        before = session.execute(select(Annotation.id, Annotation.label).order_by(Annotation.id)).all()
    stale = client.post(f"/projects/{pid}/undo", data=second_tab, headers=htmx)
    assert "That answer was already taken back (in another tab" in stale.text
    with session_scope(write=False) as session:
        assert session.execute(select(Annotation.id, Annotation.label).order_by(Annotation.id)).all() == before
    # a page that missed a later answer says so; a change of its latest answer is still that answer
    older = undo_values(client.get(f"/projects/{pid}/label").text)
    item, _ = _card_on_the_label_page(client, pid)
    client.post(f"/projects/{pid}/items/{item}/label", data={"label": "yes"}, headers=htmx)
    missed = client.post(f"/projects/{pid}/undo", data=older, headers=htmx)
    assert "Nothing was undone: you answered again after this page showed your answers" in missed.text
    latest = undo_values(client.get(f"/projects/{pid}/label").text)
    client.post(f"/projects/{pid}/items/{item}/change", headers=htmx)
    client.post(f"/projects/{pid}/items/{item}/label", data={"label": "no", "change": "true"}, headers=htmx)
    changed = client.post(f"/projects/{pid}/undo", data=latest, headers=htmx)
    assert "Your answer “no” on" in changed.text and "was taken back" in changed.text


def test_a_leads_decision_settles_an_item_nobody_answered_and_clearing_it_reopens_it(users):
    """QA: a decision on an unanswered item left it open, so annotators were served it for an
    answer the decision then silently overrode."""
    from app.models import Item

    admin, pid = setup_project(users, n_items=2, holdout_fraction=0)
    lead = users.api(users.create("lead", "lead")[1])
    users.join(pid, "lead")
    with session_scope(write=False) as session:
        first, second = session.scalars(select(Item.id).where(Item.project_id == pid).order_by(Item.id)).all()
    assert lead.post(f"/api/v1/items/{first}/adjudication", json={"label": "yes"}).status_code == 204
    a = annotator(users, "a", pid)
    assert a.get(f"/api/v1/projects/{pid}/next").json()["id"] == second
    assert a.post(f"/api/v1/items/{second}/skip").status_code in (200, 201)
    assert a.get(f"/api/v1/projects/{pid}/next").status_code == 204
    with session_scope(write=False) as session:
        assert (session.get(Item, first).state, session.get(Item, first).final_label) == ("done", "yes")
    from app.dashboard.service import adjudicate
    from app.models import Project, User

    with session_scope() as session:  # (the service can clear a decision; no page does yet)
        adjudicate(session, project=session.get(Project, pid), item=session.get(Item, first),
                   user=session.scalar(select(User).where(User.username == "lead")), label=None)
    assert a.get(f"/api/v1/projects/{pid}/next").json()["id"] == first
