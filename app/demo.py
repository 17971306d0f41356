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
# An image project too: scikit-learn's bundled handwritten digits (offline), drawn 8 times larger.
DEMO_IMAGE_PROJECT = "Handwritten digits"
# in keyboard order, so each digit is its own key (app/templating.py LABEL_KEYS)
DIGIT_LABELS = [*"123456789", "0"]
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
    image_project_id: int | None = None
    image_items: int = 0


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


def digits_zip(limit: int | None = None) -> bytes:
    """scikit-learn's 1,797 handwritten digits (8 x 8, 16 grey levels) as 64 x 64 PNGs in a .zip,
    one per file, with no label: the annotators give them."""
    import zipfile

    from PIL import Image
    from sklearn.datasets import load_digits

    images = load_digits().images[:limit]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for number, pixels in enumerate(images, 1):
            picture = Image.fromarray((255 - pixels * 255 / 16).astype("uint8")).resize((64, 64), Image.NEAREST)
            png = io.BytesIO()
            picture.save(png, "PNG")
            archive.writestr(f"digit-{number:04d}.png", png.getvalue())
    return buffer.getvalue()


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
    image_project, image_items = _image_demo(session, limit)
    logins = []
    for username, password, role in DEMO_USERS:
        user = session.scalar(select(User).where(User.username == username))
        if user is not None and user.is_active and verify_password(user.password_hash, password):
            logins.append((role, username, password))
    return DemoLoaded(project_id=project.id, items=items, created_users=created, logins=logins,
                      image_project_id=image_project.id, image_items=image_items)


def _image_demo(session: Session, limit: int | None) -> tuple[Project, int]:
    from sqlalchemy import func

    from app.models import Item

    project = session.scalar(select(Project).where(Project.name == DEMO_IMAGE_PROJECT))
    if project is not None:
        return project, session.scalar(select(func.count()).select_from(Item).where(Item.project_id == project.id))
    admin = session.scalar(select(User).where(User.username == "admin"))
    project = create_project(session, created_by=admin, data=ProjectCreate(
        name=DEMO_IMAGE_PROJECT, kind="image", labels=DIGIT_LABELS, strategy="auto", batch_size=10,
        description="Which digit is drawn? Keys 1-9 for 1-9, a for 0.",
        members=[u for u, _, role in DEMO_USERS if role != "admin"]))
    result = import_pool(session, project=project, fileobj=io.BytesIO(digits_zip(limit)), filename="digits.zip")
    return project, result.imported
