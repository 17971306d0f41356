"""Importing a pool file into a project: all of it, or nothing."""

import random
from dataclasses import dataclass
from typing import BinaryIO

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from app.db import refresh_planner_statistics
from app.errors import DomainError
from app.models import Item, ItemState, Project
from app.pool.parsing import PoolParser, UploadError, detect_format
from app.training.cold_start import queue_cold_start
from app.training.features import forget

INSERT_CHUNK = 5_000
SHUFFLE_KEYS = 2**31


@dataclass
class ImportResult:
    imported: int
    format: str
    id_column: str | None
    text_column: str | None
    feature_columns: list[str]
    meta_columns: list[str]


class ImportRefused(DomainError):
    status_code = 422

    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


def import_pool(session: Session, *, project: Project, fileobj: BinaryIO, filename: str | None,
                fmt: str | None = None, text_column: str | None = None, id_column: str | None = None,
                feature_columns: list[str] | None = None) -> ImportResult:
    """Stream `fileobj` into `project` in bulk inserts. Any problem raises ImportRefused and
    nothing of the file stays (a savepoint is rolled back, whatever the caller then does)."""
    with session.begin_nested():
        return _import(session, project=project, fileobj=fileobj, filename=filename, fmt=fmt,
                       text_column=text_column, id_column=id_column, feature_columns=feature_columns)


def _import(session: Session, *, project: Project, fileobj: BinaryIO, filename: str | None,
            fmt: str | None, text_column: str | None, id_column: str | None,
            feature_columns: list[str] | None) -> ImportResult:
    try:
        fmt = detect_format(filename, fmt)
    except UploadError as exc:
        raise ImportRefused(exc.errors) from None
    if project.kind == "tabular" and project.feature_names and not feature_columns:
        feature_columns = project.feature_names
    parser = PoolParser(fileobj, kind=project.kind, fmt=fmt, text_column=text_column,
                        id_column=id_column, feature_columns=feature_columns)
    existing_count = session.scalar(select(func.count()).select_from(Item).where(Item.project_id == project.id)) or 0
    rng = random.Random()
    # The holdout is a uniform random slice of the pool fixed at import: the items whose random key
    # falls below the project's fraction. The strategy never ranks them, so the labelled part of the
    # holdout stays an unbiased sample however the strategy chooses.
    holdout_below = int(project.holdout_fraction * SHUFFLE_KEYS)
    batch: list[dict] = []
    imported = 0

    def flush_batch() -> None:
        lines = {row["external_id"]: row.pop("_line") for row in batch}
        if existing_count:
            # The parser refuses an id repeated within the file; only a pool that already has items
            # can hold this file's ids. (Into an empty project the lookup would only cost time: on
            # PostgreSQL, planned on the statistics of the empty table, each chunk's lookup scanned
            # every row imported so far, quadratic in the file.)
            _refuse_known_ids(session, project, lines)
        session.execute(insert(Item), batch)
        batch.clear()

    for parsed in parser:
        if parser.errors:
            continue  # keep reading to report more problems, but insert nothing more
        imported += 1
        shuffle_key = rng.getrandbits(31)
        batch.append({
            "project_id": project.id,
            "external_id": parsed.external_id or str(existing_count + imported),
            "payload": parsed.payload,
            "meta": parsed.meta,
            "state": ItemState.open,
            "n_annotations": 0,
            "shuffle_key": shuffle_key,
            "is_holdout": shuffle_key < holdout_below,
            "_line": parsed.line,
        })
        if len(batch) >= INSERT_CHUNK:
            flush_batch()
    if parser.errors:
        raise ImportRefused(parser.errors)
    if batch:
        flush_batch()
    plan = parser.plan
    if project.kind == "tabular" and not project.feature_names:
        project.feature_names = plan.feature_columns
    session.flush()
    refresh_planner_statistics(session, "items")
    forget(project.id)
    queue_cold_start(session, project=project)
    return ImportResult(imported=imported, format=fmt, id_column=plan.id_column, text_column=plan.text_column,
                        feature_columns=plan.feature_columns, meta_columns=plan.meta_columns)


def _refuse_known_ids(session: Session, project: Project, lines: dict[str, int]) -> None:
    """Ids already in the project make the whole upload fail, naming the lines (id -> line)."""
    known: list[str] = []
    ids = list(lines)
    for start in range(0, len(ids), 500):
        known += session.scalars(select(Item.external_id).where(
            Item.project_id == project.id, Item.external_id.in_(ids[start:start + 500]))).all()
    if known:
        raise ImportRefused([f"line {lines[k]}: id {k!r} is already in this project" for k in known[:20]])
