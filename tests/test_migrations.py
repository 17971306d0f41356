from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

import app.models  # noqa: F401
from app.db import Base
from app.migrate import alembic_config, upgrade_to_head

EXPECTED_TABLES = {"users", "api_tokens", "projects", "items", "leases", "annotations", "model_versions",
                   "ranking_entries", "jobs", "simulations", "project_members", "login_failures", "item_quality",
                   "quality_reports", "label_reviews", "coverage_entries", "alembic_version"}


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
