import json

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

import app.models  # noqa: F401
from app.db import Base
from app.migrate import alembic_config, upgrade_to_head

EXPECTED_TABLES = {"users", "api_tokens", "projects", "items", "leases", "annotations", "model_versions",
                   "ranking_entries", "jobs", "simulations", "project_members", "login_failures", "item_quality",
                   "quality_reports", "label_reviews", "coverage_entries", "browser_sessions", "item_images",
                   "alembic_version"}


def test_migrations_build_an_empty_database_that_matches_the_models(tmp_path):
    url = f"sqlite:///{tmp_path}/fresh.db"
    upgrade_to_head(url)
    engine = create_engine(url)
    assert set(inspect(engine).get_table_names()) == EXPECTED_TABLES
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    engine.dispose()


def test_migrations_go_down_and_up_again(tmp_path):
    url = f"sqlite:///{tmp_path}/roundtrip.db"
    cfg = alembic_config(url)
    command.upgrade(cfg, "head")
    command.downgrade(cfg, "base")
    engine = create_engine(url)
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    command.upgrade(cfg, "head")
    assert set(inspect(engine).get_table_names()) == EXPECTED_TABLES
    engine.dispose()


def test_the_test_database_is_at_head(database_url):
    from app.db import get_engine

    with get_engine().connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_0008_moves_autos_cover_batch_to_where_every_strategy_keeps_it(tmp_path):
    """A model version of auto written before 0008 kept its cover batch's items in its strategy
    choice; after the upgrade they are in metrics["cover"], as for margin, and downgrading puts
    them back."""
    from sqlalchemy import text

    url = f"sqlite:///{tmp_path}/cover.db"
    cfg = alembic_config(url)
    command.upgrade(cfg, "0007")
    engine = create_engine(url)
    old_cover = {"strategy_choice": {"arm": "cover", "reason": "Cold start: ...", "cover_ids": [5, 7]}}
    old_arm = {"strategy_choice": {"arm": "margin", "reason": "margin was drawn", "cover_ids": None}}
    margin = {"cover": {"ids": [1], "reason": "Cold start: ..."}}
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO projects (id, name, description, kind, labels, strategy, strategy_params, "
                          "batch_size, annotations_per_item, holdout_fraction, created_at, next_train_at) VALUES "
                          "(1, 'p', '', 'text', '[\"a\", \"b\"]', 'auto', '{}', 10, 1, 0.1, '2026-12-01', 10)"))
        for vid, strategy, metrics in ((1, "auto:cover", old_cover), (2, "auto:margin", old_arm),
                                       (3, "margin:cover", margin)):
            conn.execute(text("INSERT INTO model_versions (id, project_id, version, created_at, n_labels, classes, "
                              "metrics, strategy, train_seconds, score_seconds, n_ranked, artifact) VALUES "
                              "(:id, 1, :id, '2026-12-01', 10, '[]', :m, :s, 0, 0, 0, x'')"),
                         {"id": vid, "m": json.dumps(metrics), "s": strategy})

    def metrics() -> dict:
        with engine.connect() as conn:
            return {vid: json.loads(m) for vid, m in conn.execute(text("SELECT id, metrics FROM model_versions"))}

    command.upgrade(cfg, "head")
    after = metrics()
    assert after[1] == {"strategy_choice": {"arm": "cover", "reason": "Cold start: ..."},
                        "cover": {"ids": [5, 7], "reason": "Cold start: ..."}}
    assert after[2] == {"strategy_choice": {"arm": "margin", "reason": "margin was drawn"}}
    assert after[3] == margin
    command.downgrade(cfg, "0007")
    assert metrics() == {1: old_cover, 2: old_arm, 3: margin}
    engine.dispose()


def test_migrations_keep_every_row_on_sqlite(tmp_path):
    """SQLite rebuilds a table to alter it; with foreign keys on, dropping the old copy would cascade
    into every table that points at it (a user's annotations, a project's items). Down to 0008 and up
    again, every row stays."""
    import io

    from sqlalchemy import text
    from sqlalchemy.orm import Session

    from app.db import make_engine
    from app.labeling.service import annotate, next_item
    from app.pool.service import import_pool
    from app.projects.schemas import ProjectCreate
    from app.projects.service import create_project
    from app.users.service import create_user, issue_api_token, start_browser_session

    url = f"sqlite:///{tmp_path}/kept.db"
    cfg = alembic_config(url)
    command.upgrade(cfg, "head")
    engine = make_engine(url)
    with Session(engine) as session:
        boss = create_user(session, username="boss", password="password-123", role="admin")
        ann = create_user(session, username="ann", password="password-123", role="annotator")
        issue_api_token(session, user=ann)
        start_browser_session(session, user=ann)
        project = create_project(session, created_by=boss, data=ProjectCreate(
            name="P", kind="text", labels=["a", "b"], members=["ann"], holdout_fraction=0))
        import_pool(session, project=project, fileobj=io.BytesIO(b"text\none\ntwo\nthree\n"), filename="p.csv")
        annotate(session, project=project, item=next_item(session, project=project, user=ann).item, user=ann,
                 label="a")
        next_item(session, project=project, user=ann)  # a lease
        session.commit()

    def counts() -> dict:
        with engine.connect() as conn:
            tables = [t for t in inspect(conn).get_table_names() if t not in ("alembic_version", "browser_sessions")]
            return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in tables}

    before = counts()
    assert all(before[t] for t in ("users", "api_tokens", "projects", "items", "annotations", "leases",
                                   "project_members", "jobs"))
    engine.dispose()
    command.downgrade(cfg, "0008")
    command.upgrade(cfg, "head")
    assert counts() == before
    engine.dispose()


def test_0011_gives_the_items_already_imported_the_hash_an_import_gives(tmp_path):
    """Rows imported before 0011 get the content hash the import computes, so a file uploaded again
    after the upgrade finds them (text and features alike)."""
    import io

    from sqlalchemy import select, text
    from sqlalchemy.orm import Session

    from app.db import make_engine
    from app.models import Item
    from app.pool.content import content_hash
    from app.pool.service import import_pool
    from app.projects.schemas import ProjectCreate
    from app.projects.service import create_project
    from app.users.service import create_user

    url = f"sqlite:///{tmp_path}/hash.db"
    cfg = alembic_config(url)
    command.upgrade(cfg, "head")
    engine = make_engine(url)
    with Session(engine) as session:
        boss = create_user(session, username="boss", password="password-123", role="admin")
        words = create_project(session, created_by=boss, data=ProjectCreate(name="W", kind="text", labels=["a", "b"]))
        table = create_project(session, created_by=boss, data=ProjectCreate(name="T", kind="tabular",
                                                                            labels=["a", "b"]))
        import_pool(session, project=words, fileobj=io.BytesIO("text\nün\n\"two, quoted\"\n".encode()),
                    filename="w.csv")
        import_pool(session, project=table, fileobj=io.BytesIO(b"x,y\n1.5,2\n0.1,1e-300\n"), filename="t.csv")
        session.commit()
        hashes = dict(session.execute(select(Item.id, Item.content_hash)).all())
        rows = session.execute(select(Item.id, Item.payload, Item.meta, Item.project_id)).all()
        table_id = table.id
    # (a table's row is hashed with its other columns: 0018)
    assert hashes == {i: content_hash(p, m if pid == table_id else None) for i, p, m, pid in rows}
    assert len(set(hashes.values())) == 4
    engine.dispose()
    command.downgrade(cfg, "0010")
    command.upgrade(cfg, "head")
    with engine.connect() as conn:
        assert dict(conn.execute(text("SELECT id, content_hash FROM items")).all()) == hashes
    engine.dispose()
