"""Claims skip rows that another transaction is claiming: `SKIP LOCKED` on PostgreSQL.

The compiled statements are checked on every database; the statements actually emitted while an
item and a job are claimed are checked on the database the suite runs on (on SQLite, which has no
row locks and serialises claims with BEGIN IMMEDIATE, they must carry no FOR clause at all).
"""

from contextlib import contextmanager

from sqlalchemy import event, select
from sqlalchemy.dialects import postgresql, sqlite

from app.db import get_engine
from app.labeling.service import claim_lock
from app.models import CoverageEntry, Item, RankingEntry
from app.worker.runner import claim_next_job, claim_statement


def pg_sql(stmt) -> str:
    return " ".join(str(stmt.compile(dialect=postgresql.dialect())).split())


def test_item_claims_compile_to_for_no_key_update_of_items_skip_locked():
    shapes = [
        select(Item).where(Item.project_id == 1).order_by(Item.shuffle_key).limit(1),
        select(Item).join(CoverageEntry, CoverageEntry.item_id == Item.id).order_by(CoverageEntry.position).limit(1),
        select(Item, RankingEntry.score).join(RankingEntry, RankingEntry.item_id == Item.id)
        .order_by(RankingEntry.rank).limit(1),
    ]
    for stmt in shapes:
        sql = pg_sql(claim_lock(stmt, "postgresql"))
        # only the item rows are locked, never the ranking or coverage rows joined to them
        assert sql.endswith("FOR NO KEY UPDATE OF items SKIP LOCKED"), sql
        assert claim_lock(stmt, "sqlite") is stmt


def test_the_job_claim_compiles_to_for_update_skip_locked():
    sql = pg_sql(claim_statement())
    assert sql.endswith("FOR UPDATE SKIP LOCKED"), sql
    assert "NO KEY" not in sql and "FROM jobs" in sql
    assert "FOR UPDATE" not in str(claim_statement().compile(dialect=sqlite.dialect()))


@contextmanager
def captured_sql():
    engine = get_engine()
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_the_statements_emitted_while_claiming_an_item_and_a_job(users):
    _, token = users.create("admin", "admin")
    api = users.api(token)
    pid = api.post("/api/v1/projects", json={"name": "P", "kind": "text", "labels": ["a", "b"],
                                             "strategy": "margin", "holdout_fraction": 0}).json()["id"]
    pool = "text\n" + "".join(f"item number {i}\n" for i in range(10))
    assert api.post(f"/api/v1/projects/{pid}/items", files={"file": ("p.csv", pool.encode(), "text/csv")}).is_success
    on_postgresql = get_engine().dialect.name == "postgresql"

    # Before the import's coverage job has run, serving tries the coverage order, then the shuffle order.
    with captured_sql() as statements:
        assert api.get(f"/api/v1/projects/{pid}/next").status_code == 200
    item_claims = [s for s in statements if s.startswith("SELECT items.") and " LIMIT " in s
                   and ("ORDER BY coverage_entries.position" in s or "ORDER BY items.shuffle_key" in s)]
    assert len(item_claims) == 2, statements
    for sql in item_claims:
        if on_postgresql:
            assert sql.endswith("FOR NO KEY UPDATE OF items SKIP LOCKED"), sql
        else:
            assert " FOR " not in sql, sql

    with captured_sql() as statements:
        job = claim_next_job("test:1")
    assert job is not None and job.kind == "cold_start"
    job_claims = [s for s in statements if " FROM jobs " in s and " LIMIT " in s]
    assert len(job_claims) == 1, statements
    if on_postgresql:
        assert job_claims[0].endswith("FOR UPDATE SKIP LOCKED"), job_claims[0]
    else:
        assert " FOR " not in job_claims[0]
