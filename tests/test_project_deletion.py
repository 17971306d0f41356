"""Deleting a project: gone for everyone at once, its rows removed by the worker, nobody else's touched."""

from sqlalchemy import func, inspect, select, text

from app.db import get_engine, session_scope
from app.models import Job, Project
from tests.conftest import run_worker_until_idle
from tests.data import rotten_tomatoes, to_csv
from tests.test_api_loop import create_text_project
from tests.test_pages import login


def _labelled_project(admin, annotator, name: str, n_answers: int = 25) -> int:
    project = create_text_project(admin, name=name, members=["ann"], batch_size=10)
    rows = rotten_tomatoes(120)
    gold = {r["id"]: r["category"] for r in rows}
    assert admin.post(f"/api/v1/projects/{project['id']}/items",
                      files={"file": ("pool.csv", to_csv(rows, ["id", "text"]), "text/csv")}).status_code == 201
    for _ in range(n_answers):
        item = annotator.get(f"/api/v1/projects/{project['id']}/next").json()
        assert annotator.post(f"/api/v1/items/{item['id']}/annotations",
                              json={"label": gold[item["external_id"]]}).status_code == 201
        run_worker_until_idle()
    annotator.get(f"/api/v1/projects/{project['id']}/next")  # a lease left open
    return project["id"]


def _rows_per_table() -> dict[str, int]:
    """Every table's row count, and the project rows of the tables that have a project_id."""
    engine = get_engine()
    counts = {}
    with engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            if table == "alembic_version":
                continue
            counts[table] = conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()
    return counts


def test_a_deleted_project_is_gone_at_once_and_the_worker_removes_every_row_of_it(users):
    _, admin_token = users.create("boss", "admin")
    _, ann_token = users.create("ann", "annotator")
    admin, annotator = users.api(admin_token), users.api(ann_token)
    kept = _labelled_project(admin, annotator, "Kept")
    before_second = _rows_per_table()
    doomed = _labelled_project(admin, annotator, "Doomed")
    item = annotator.get(f"/api/v1/projects/{doomed}/next").json()
    assert admin.get(f"/api/v1/projects/{doomed}/models").json(), "the project has trained models"

    assert admin.delete(f"/api/v1/projects/{doomed}").status_code == 204
    # nobody sees it from now on, though the worker has not run yet
    assert admin.get(f"/api/v1/projects/{doomed}").status_code == 404
    assert [p["id"] for p in admin.get("/api/v1/projects").json()] == [kept]
    assert annotator.get(f"/api/v1/projects/{doomed}/next").status_code == 404
    answer = annotator.post(f"/api/v1/items/{item['id']}/annotations", json={"label": "fresh"})
    assert answer.status_code == 404
    assert admin.delete(f"/api/v1/projects/{doomed}").status_code == 404

    run_worker_until_idle()
    # every row the second project added is gone, and the first project's are all there
    assert _rows_per_table() == before_second
    with session_scope(write=False) as session:
        assert session.get(Project, doomed) is None
        assert session.scalar(select(func.count()).select_from(Job).where(Job.project_id == doomed)) == 0
    assert annotator.get(f"/api/v1/projects/{kept}/next").status_code == 200


def test_waiting_jobs_of_a_deleted_project_are_called_off(users, monkeypatch):
    import app.projects.deletion as deletion

    monkeypatch.setattr(deletion, "ITEM_CHUNK", 7)  # many chunks of items
    _, admin_token = users.create("boss", "admin")
    admin = users.api(admin_token)
    pid = create_text_project(admin, name="P")["id"]
    rows = rotten_tomatoes(50)
    admin.post(f"/api/v1/projects/{pid}/items", files={"file": ("p.csv", to_csv(rows, ["id", "text"]), "text/csv")})
    with session_scope() as session:
        waiting = session.scalars(select(Job).where(Job.project_id == pid, Job.status == "queued")).all()
        assert [j.kind for j in waiting] == ["cold_start"]
    assert admin.delete(f"/api/v1/projects/{pid}").status_code == 204
    with session_scope(write=False) as session:
        jobs = {j.kind: (j.status, j.error) for j in session.scalars(select(Job).where(Job.project_id == pid))}
    assert jobs == {"cold_start": ("failed", "the project was deleted"), "delete_project": ("queued", None)}
    assert run_worker_until_idle() == 1
    with session_scope(write=False) as session:
        assert session.get(Project, pid) is None


def test_only_an_admin_deletes_and_the_page_asks_for_the_name(client, users):
    _, admin_token = users.create("boss", "admin")
    _, lead_token = users.create("lead", "lead")
    admin = users.api(admin_token)
    pid = create_text_project(admin, name="<b>Reviews</b>", members=["lead"])["id"]
    assert users.api(lead_token).delete(f"/api/v1/projects/{pid}").status_code == 403
    csrf = login(client, "lead")
    refused = client.post(f"/projects/{pid}/delete", data={"confirm_name": "<b>Reviews</b>", "csrf_token": csrf})
    assert refused.status_code == 403 and client.get(f"/projects/{pid}").status_code == 200

    client.cookies.clear()
    csrf = login(client, "boss")
    settings = client.get(f"/projects/{pid}/settings")
    assert f'action="/projects/{pid}/delete"' in settings.text
    assert "<strong>&lt;b&gt;Reviews&lt;/b&gt;</strong>" in settings.text
    assert client.post(f"/projects/{pid}/delete", data={"confirm_name": "<b>Reviews</b>"}).status_code == 403  # no CSRF
    wrong = client.post(f"/projects/{pid}/delete", data={"confirm_name": "Reviews", "csrf_token": csrf})
    assert wrong.status_code == 422 and "The project was not deleted: type its name exactly" in wrong.text
    assert client.get(f"/projects/{pid}").status_code == 200
    done = client.post(f"/projects/{pid}/delete", data={"confirm_name": "<b>Reviews</b>", "csrf_token": csrf},
                       follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].startswith("/projects?deleted=")
    listing = client.get(done.headers["location"])
    assert "Project <strong>&lt;b&gt;Reviews&lt;/b&gt;</strong> was deleted." in listing.text
    assert client.get(f"/projects/{pid}").status_code == 404
    assert client.get(f"/projects/{pid}/dashboard").status_code == 404
