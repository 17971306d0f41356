"""Engine, sessions and the declarative base.

SQLite is the embedded default. Two things make it safe with several threads and processes:
WAL (readers never block the writer) and explicit transactions. pysqlite's own transaction
handling starts a transaction only at the first write, so a read-then-write (claiming an
item) would race; we disable it and emit BEGIN ourselves, BEGIN IMMEDIATE on the engine used
for writes, so a claim holds the write lock from its first read.
"""

import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache

import orjson
from sqlalchemy import Engine, MetaData, create_engine, event, text
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from app.config import get_settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def is_sqlite(engine_or_url) -> bool:
    url = getattr(engine_or_url, "url", engine_or_url)
    return str(url).startswith("sqlite")


def _prepare_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, see module docstring
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        if mode == "IMMEDIATE":
            _begin_immediate(conn.connection.driver_connection)
        else:
            conn.exec_driver_sql(f"BEGIN {mode}")


# How often a writer waiting for SQLite's write lock tries again, and for how long in all.
WRITE_LOCK_POLL_SECONDS = 0.001
WRITE_LOCK_TIMEOUT_SECONDS = 60.0


def _begin_immediate(dbapi_conn) -> None:
    """BEGIN IMMEDIATE, retried every millisecond while another connection writes.

    SQLite's own busy handler sleeps longer and longer between tries (up to 100 ms). While the
    worker writes a million-row ranking in chunks, each commit is followed within milliseconds by
    the next chunk's BEGIN, so a web request backing off that way found the lock free only by luck
    and waited seconds. Trying every millisecond catches the gap between two chunks.
    """
    dbapi_conn.execute("PRAGMA busy_timeout=0")
    deadline = time.monotonic() + WRITE_LOCK_TIMEOUT_SECONDS
    try:
        while True:
            try:
                dbapi_conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                busy = "locked" in str(exc) or "busy" in str(exc)
                if not busy or time.monotonic() > deadline:
                    raise
            time.sleep(WRITE_LOCK_POLL_SECONDS)
    finally:
        dbapi_conn.execute(f"PRAGMA busy_timeout={int(WRITE_LOCK_TIMEOUT_SECONDS * 1000)}")


def dump_json(value) -> str:
    """JSON text for bulk imports: orjson, about ten times faster than the standard library on the
    feature lists of a million-row import. NaN becomes null; what orjson cannot take (integers
    beyond 64 bits) goes the standard way. (The engine keeps the standard serializer: elsewhere a NaN
    in a metric must round-trip as NaN on SQLite, as it always has.)"""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value)


def load_json(text: str | bytes):
    """JSON columns' deserializer: orjson (a million payloads are read to build a pool's features),
    the standard library for what orjson refuses (NaN and Infinity, which json.dumps writes)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def bulk_insert(session: Session, table_name: str, columns: Sequence[str], rows: list[tuple]) -> None:
    """Insert `rows` (tuples of driver-ready values in `columns` order) in the session's transaction.

    SQLAlchemy's per-row parameter processing costs more than the insert itself at a million rows
    (an import, a ranking), so this goes to the driver: SQLite's executemany, PostgreSQL's COPY.
    Values must be what the driver takes: JSON as text (`dump_json`), and on SQLite datetimes and
    booleans as the column type's bind processor makes them.
    """
    if not rows:
        return
    connection = session.connection()
    names = ", ".join(columns)
    if connection.dialect.name == "postgresql":
        with connection.connection.driver_connection.cursor() as cursor, \
                cursor.copy(f"COPY {table_name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    connection.exec_driver_sql(f"INSERT INTO {table_name} ({names}) VALUES ({', '.join('?' * len(columns))})",
                               rows)


def make_engine(url: str) -> Engine:
    if is_sqlite(url):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            from pathlib import Path

            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # A request can wait for SQLite's single write lock while holding its connection, so the pool
        # must cover every request thread uvicorn runs at once (40) or requests fail on a pool timeout.
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 60},
                               pool_size=50, max_overflow=50, pool_timeout=60,
                               json_deserializer=load_json)
        _prepare_sqlite(engine)
        return engine
    return create_engine(url, pool_size=20, max_overflow=30, pool_timeout=60, pool_pre_ping=True,
                         json_deserializer=load_json)


@lru_cache
def get_engine() -> Engine:
    return make_engine(get_settings().database_url)


@lru_cache
def _sessionmakers() -> tuple[sessionmaker, sessionmaker]:
    engine = get_engine()
    write_engine = engine.execution_options(sqlite_begin="IMMEDIATE") if is_sqlite(engine) else engine
    return (
        sessionmaker(bind=engine, expire_on_commit=False),
        sessionmaker(bind=write_engine, expire_on_commit=False),
    )


def read_session() -> Session:
    return _sessionmakers()[0]()


def write_session() -> Session:
    return _sessionmakers()[1]()


@contextmanager
def session_scope(write: bool = True) -> Iterator[Session]:
    """A unit of work outside a request (worker, CLI): commit on success, roll back on error."""
    session = write_session() if write else read_session()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def refresh_planner_statistics(session: Session, *tables: str) -> None:
    """ANALYZE `tables` on PostgreSQL after a bulk write.

    Autovacuum analyses a table only some time after a bulk load. Until then the planner may
    believe a 3,000-row pool is empty and join it to a ranking by nested loops: seconds per
    /next instead of milliseconds. SQLite plans from its indexes and needs nothing here.
    """
    if session.get_bind().dialect.name == "postgresql":
        for table in tables:
            session.execute(text(f"ANALYZE {table}"))


def reset_engine_cache() -> None:
    """Forget the engine (tests switch DATABASE_URL between runs)."""
    if get_engine.cache_info().currsize:
        get_engine().dispose()
    get_engine.cache_clear()
    _sessionmakers.cache_clear()
