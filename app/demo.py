"""The demo project: the Rotten Tomatoes snippets and three users, loaded by `labelloop demo`."""

import bz2
import csv
import io
from dataclasses import dataclass
from importlib import resources

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Project, User
from app.pool.service import import_pool
from app.projects.schemas import ProjectCreate
from app.projects.service import create_project
from app.security import verify_password
from app.users.service import create_user

DEMO_PROJECT = "Rotten Tomatoes snippets"
# Demo logins, printed by `make run`. They are for a local trial only: change them on a shared server.
DEMO_USERS = (("admin", "admin-demo-pass", "admin"), ("lead", "lead-demo-pass", "lead"),
              ("annotator", "annotator-demo-pass", "annotator"))


@dataclass
class DemoLoaded:
    project_id: int
    items: int
    created_users: list[str]
    # (role, username, password) of demo users whose demo password still works
    logins: list[tuple[str, str, str]]


def demo_csv(limit: int | None = None) -> bytes:
    """The snippets as CSV for import: empty texts dropped, and no `category` column, which holds the
    answer and must not be shown to annotators."""
    raw = resources.files("app").joinpath("demo_data/rotten_tomatoes.csv.bz2").read_bytes()
    reader = csv.DictReader(io.StringIO(bz2.decompress(raw).decode("utf-8")))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "text", "movie_name"])
    written = 0
    for number, row in enumerate(reader, 1):
        if not (row.get("text") or "").strip():
            continue
        writer.writerow([f"rt-{number}", row["text"], row["movie_name"]])
        written += 1
        if limit is not None and written >= limit:
            break
    return out.getvalue().encode("utf-8")


def load_demo(session: Session, *, limit: int | None = None) -> DemoLoaded:
    """Create the demo users and project if they are missing; running it again changes nothing."""
    created = []
    for username, password, role in DEMO_USERS:
        if session.scalar(select(User.id).where(User.username == username)) is None:
            create_user(session, username=username, password=password, role=role)
            created.append(username)
    project = session.scalar(select(Project).where(Project.name == DEMO_PROJECT))
    if project is None:
        admin = session.scalar(select(User).where(User.username == "admin"))
        project = create_project(session, created_by=admin, data=ProjectCreate(
            name=DEMO_PROJECT, kind="text", labels=["fresh", "rotten", "plot"], strategy="auto", batch_size=10,
            description="Movie-review snippets: is the critic's verdict fresh or rotten, or is it plot summary?",
            members=[u for u, _, role in DEMO_USERS if role != "admin"]))
        result = import_pool(session, project=project, fileobj=io.BytesIO(demo_csv(limit)),
                             filename="rotten_tomatoes.csv")
        items = result.imported
    else:
        from sqlalchemy import func

        from app.models import Item

        items = session.scalar(select(func.count()).select_from(Item).where(Item.project_id == project.id)) or 0
    logins = []
    for username, password, role in DEMO_USERS:
        user = session.scalar(select(User).where(User.username == username))
        if user is not None and user.is_active and verify_password(user.password_hash, password):
            logins.append((role, username, password))
    return DemoLoaded(project_id=project.id, items=items, created_users=created, logins=logins)
