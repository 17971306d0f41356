"""Text holding the NUL character (byte 0x00), which PostgreSQL's text types cannot store: refused
with a 4xx and a sentence on both databases, never a 500 (the API fuzz test found a project named
"\\u0000" answering 500 on PostgreSQL)."""

from sqlalchemy import func, select

from app.db import session_scope
from app.models import Item, Project, User
from tests.test_pages import csrf_of, login


def test_request_bodies_with_a_nul_are_refused_on_both_databases(users):
    _, token = users.create("admin", "admin")
    admin = users.api(token)
    named = admin.post("/api/v1/projects", json={"name": "\u0000", "kind": "text", "labels": ["0", "00"]})
    assert named.status_code == 422 and "NUL character" in named.text
    labelled = admin.post("/api/v1/projects", json={"name": "P", "kind": "text", "labels": ["a", "b\u0000"]})
    assert labelled.status_code == 422 and "NUL character" in labelled.text
    person = admin.post("/api/v1/users", json={"username": "x\u0000y", "password": "password-123",
                                               "role": "annotator"})
    assert person.status_code == 422 and "NUL character" in person.text
    with session_scope(write=False) as session:
        assert session.scalar(select(func.count()).select_from(Project)) == 0
        assert session.scalar(select(func.count()).select_from(User)) == 1


def test_a_file_with_a_nul_names_its_line_and_imports_nothing(users, client):
    _, token = users.create("admin", "admin")
    admin = users.api(token)
    project = admin.post("/api/v1/projects", json={"name": "P", "kind": "text", "labels": ["a", "b"]}).json()
    csv = admin.post(f"/api/v1/projects/{project['id']}/items",
                     files={"file": ("p.csv", b"text\nfine\nbro\x00ken\n", "text/csv")})
    assert csv.status_code == 422 and "line 3: holds a NUL character" in csv.text
    jsonl = admin.post(f"/api/v1/projects/{project['id']}/items",
                       files={"file": ("p.jsonl", b'{"id": "a\\u0000", "text": "x"}\n', "application/x-ndjson")})
    assert jsonl.status_code == 422 and "line 1, column 'id': the id holds a NUL character" in jsonl.text
    with session_scope(write=False) as session:
        assert session.scalar(select(func.count()).select_from(Item)) == 0

    # a plain form field (the users page) is refused too
    csrf = login(client, "admin")
    page = client.post("/admin/users", data={"username": "a\u0000b", "role": "annotator",
                                             "password": "password-123", "csrf_token": csrf})
    assert page.status_code == 422 and "NUL character" in page.text
    assert csrf_of(page.text)
