"""Image-project import speed and memory: a .zip of synthetic photographs through the service.

A fresh SQLite database (or, with `--database-url`, a scratch database on that PostgreSQL server)
gets one image project; `--images` JPEGs of `--size` pixels (smooth colour fields with shapes, so
they compress like photographs, not like noise) are written into a .zip, a share of them in one
folder per label, and the whole archive is imported by `app.pool.service.import_pool` (what the
upload form, the API and `labelloop import` run). Then the pool's feature matrix (16 x 16 RGB
thumbnails, stored at import) is built as a first retrain does. Printed: the archive's size, the
import's seconds, pictures and MB per second, this process's peak RSS during the import (VmHWM
reset just before), the database's growth, and the feature matrix's seconds. Nothing is downloaded.

    .venv/bin/python benchmarks/bench_image_import.py                 # 5,000 pictures of 640 x 480
    .venv/bin/python benchmarks/bench_image_import.py --images 500    # a smoke run
"""

import argparse
import io
import os
import sys
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import (  # noqa: E402
    add_database_args,
    backend_of,
    database_url,
    facts_line,
    machine_facts,
    point_app_at,
    proc_status_mb,
    reset_peak_rss,
    scratch_database,
    self_peak_rss_mb,
    workdir,
)

LABELS = ["circle", "square", "triangle"]


def photo(rng, width: int, height: int, shape: str) -> bytes:
    """A JPEG of a smooth two-colour field with one large shape on it."""
    import numpy as np
    from PIL import Image, ImageDraw

    a, b = rng.integers(0, 256, size=(2, 3))
    t = np.linspace(0.0, 1.0, width)[None, :, None]
    field = (a * (1 - t) + b * t).repeat(height, axis=0).astype("uint8")
    picture = Image.fromarray(field, "RGB")
    draw = ImageDraw.Draw(picture)
    cx, cy, r = int(rng.integers(width // 4, 3 * width // 4)), int(rng.integers(height // 4, 3 * height // 4)), \
        int(rng.integers(min(width, height) // 8, min(width, height) // 4))
    colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    elif shape == "square":
        draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=colour)
    else:
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=85)
    return out.getvalue()


def write_zip(path: Path, n: int, width: int, height: int, labelled_share: float, seed: int = 0) -> int:
    import numpy as np

    rng = np.random.default_rng(seed)
    labelled = 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:  # JPEGs do not compress further
        for number in range(n):
            shape = LABELS[number % len(LABELS)]
            if rng.random() < labelled_share:
                name, labelled = f"{shape}/{number:06d}.jpg", labelled + 1
            else:
                name = f"{number:06d}.jpg"
            archive.writestr(name, photo(rng, width, height, shape))
    return labelled


def database_bytes(url: str) -> int | None:
    from sqlalchemy import text

    from app.db import get_engine

    if url.startswith("sqlite:///"):
        with get_engine().connect() as conn:  # the write-ahead log's pages into the file, then measure it
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        return Path(url.removeprefix("sqlite:///")).stat().st_size
    with get_engine().connect() as conn:
        return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=5_000)
    parser.add_argument("--size", default="640x480", help="width x height of each picture")
    parser.add_argument("--labelled", type=float, default=0.1, help="share of pictures in a label's folder")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    add_database_args(parser)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    url_base = database_url(args)
    facts = machine_facts()
    with workdir("bench-image-import", keep=args.keep) as work:
        archive = work / "pictures.zip"
        t0 = time.perf_counter()
        labelled = write_zip(archive, args.images, width, height, args.labelled)
        megabytes = archive.stat().st_size / 2**20
        print(f"wrote {args.images:,} JPEGs of {width} x {height} ({labelled:,} in label folders): "
              f"{megabytes:.0f} MB in {time.perf_counter() - t0:.1f} s", flush=True)
        with scratch_database(url_base, work, "images") as url:
            point_app_at(url, work / "data")
            from app.db import session_scope
            from app.migrate import upgrade_to_head
            from app.models import Project
            from app.pool.service import import_pool
            from app.projects.schemas import ProjectCreate
            from app.projects.service import create_project
            from app.training.features import forget, pool_features
            from app.users.service import create_user

            upgrade_to_head(url)
            with session_scope() as session:
                admin = create_user(session, username="bench", password="benchmark-pass", role="admin")
                project_id = create_project(session, created_by=admin, data=ProjectCreate(
                    name="pictures", kind="image", labels=LABELS, strategy="margin")).id
                admin_id = admin.id
            size_before = database_bytes(url)
            before = proc_status_mb(os.getpid(), "VmRSS")
            reset = reset_peak_rss(os.getpid())
            started = time.perf_counter()
            with session_scope() as session, archive.open("rb") as fh:
                from app.models import User

                result = import_pool(session, project=session.get(Project, project_id), fileobj=fh,
                                     filename=archive.name, label_column="folder",
                                     imported_by=session.get(User, admin_id))
            seconds = time.perf_counter() - started
            peak = proc_status_mb(os.getpid(), "VmHWM") if reset else self_peak_rss_mb()
            size_after = database_bytes(url)
            forget()
            t0 = time.perf_counter()
            with session_scope(write=False) as session:
                features = pool_features(session, session.get(Project, project_id))
            feature_seconds = time.perf_counter() - t0
        print(f"database: {backend_of(url_base or 'sqlite')}")
        print(f"imported {result.imported:,} pictures ({result.labelled:,} labelled) in {seconds:.1f} s: "
              f"{result.imported / seconds:.0f} pictures/s, {megabytes / seconds:.1f} MB/s of archive")
        print(f"peak RSS during the import: {peak:.0f} MB (RSS before: {before:.0f} MB)")
        if size_before is not None and size_after is not None:
            print(f"database grew by {(size_after - size_before) / 2**20:.0f} MB "
                  f"(the archive: {megabytes:.0f} MB)")
        print(f"feature matrix {features.X.shape[0]:,} x {features.X.shape[1]} built in {feature_seconds:.1f} s")
    print(facts_line(facts))


if __name__ == "__main__":
    main()
