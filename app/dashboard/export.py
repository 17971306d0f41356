"""Exports for leads: labelled items, every annotation, and the current model as a file."""

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC
from typing import BinaryIO

import joblib
import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.al import build_classifier
from app.errors import InvalidInput, NotFound
from app.models import Annotation, Item, ModelVersion, Project, User
from app.pool.parsing import FORMULA_START
from app.training.features import feature_kind, pool_features, raw_inputs
from app.training.service import load_pipeline

SLICES = ("all", "active", "holdout")
FETCH = 5_000


def _slice_condition(slice_: str):
    if slice_ not in SLICES:
        raise InvalidInput(f"unknown slice {slice_!r}; choose all, active or holdout")
    if slice_ == "holdout":
        return [Item.is_holdout.is_(True)]
    if slice_ == "active":
        return [Item.is_holdout.is_(False)]
    return []


ANNOTATION_COLUMNS = ["item_id", "label", "skipped", "annotator", "created_at", "updated_at", "seconds_spent",
                      "holdout", "source", "strategy", "score", "model_version"]


def item_columns(session: Session, project: Project, slice_: str = "all") -> list[str]:
    """An item export's columns: id, the data, label and how it was reached, then every metadata key
    the slice's labelled items have, in the order first met (a read of the metadata alone)."""
    data = ["text"] if project.kind == "text" else ["image"] if project.kind == "image" \
        else list(project.feature_names or [])
    if project.embedding_dim:  # kept, so that the export imports into a new project as it was
        data.append("embedding")
    columns = ["id", *data, "label", "holdout", "n_annotations", "adjudicated"]
    seen = dict.fromkeys(columns)
    stmt = (select(Item.meta).where(Item.project_id == project.id, Item.final_label.is_not(None),
                                    *_slice_condition(slice_)).execution_options(yield_per=FETCH))
    for meta in session.scalars(stmt):
        for key in meta or ():
            if key not in seen:
                seen[key] = None
    return list(seen)


def item_rows(session: Session, project: Project, slice_: str = "all") -> Iterator[dict]:
    """One row per labelled item: id, the data as it was imported, its label and how it was reached."""
    stmt = (select(Item).where(Item.project_id == project.id, Item.final_label.is_not(None),
                               *_slice_condition(slice_)).order_by(Item.id).execution_options(yield_per=FETCH))
    for item in session.scalars(stmt):
        row = {"id": item.external_id}
        if project.kind == "text":
            row["text"] = item.payload["text"]
        elif project.kind == "image":
            row["image"] = item.payload["image"]  # the SHA-256 of the stored picture
        else:
            row.update(zip(project.feature_names or [], item.payload["features"], strict=False))
        if "embedding" in item.payload:
            row["embedding"] = item.payload["embedding"]
        row.update({"label": item.final_label, "holdout": item.is_holdout, "n_annotations": item.n_annotations,
                    "adjudicated": item.adjudicated_label is not None})
        for key, value in (item.meta or {}).items():
            row.setdefault(key, value)
        yield row


def annotation_rows(session: Session, project: Project, slice_: str = "all") -> Iterator[dict]:
    """One row per answer: who, when, how long, and why the item was served."""
    stmt = (select(Annotation, Item.external_id, Item.is_holdout, User.username)
            .join(Item, Item.id == Annotation.item_id).join(User, User.id == Annotation.user_id)
            .where(Annotation.project_id == project.id, *_slice_condition(slice_))
            .order_by(Annotation.id).execution_options(yield_per=FETCH))
    for annotation, external_id, is_holdout, username in session.execute(stmt):
        yield {"item_id": external_id, "label": annotation.label, "skipped": annotation.skipped,
               "annotator": username,
               "created_at": annotation.created_at.replace(tzinfo=UTC).isoformat(),
               "updated_at": annotation.updated_at.replace(tzinfo=UTC).isoformat(),
               "seconds_spent": annotation.seconds_spent, "holdout": is_holdout, "source": annotation.source,
               "strategy": annotation.strategy, "score": annotation.score,
               "model_version": annotation.model_version}


# A spreadsheet runs a cell that starts like this as a formula (OWASP "CSV injection"): item text,
# labels, metadata and usernames are untrusted, so such a cell gets a leading apostrophe, which
# spreadsheets show as text. Plain numbers ("-3.5") are left alone: they are not formulas. Importing
# the CSV takes the apostrophe off again (app/pool/parsing.py).
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def spreadsheet_safe(value):
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def as_csv(rows: Iterator[dict], columns: list[str]) -> Iterator[str]:
    """CSV text in chunks under the header `columns` (a row without one of them leaves its cell
    empty), so every row's metadata has its column and an empty export still has its header."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="", extrasaction="ignore")
    writer.writerow({key: spreadsheet_safe(key) for key in columns})
    for n, row in enumerate(rows):
        # nested metadata (from JSON Lines or Parquet) as JSON, which an import reads back, not a Python repr
        writer.writerow({key: spreadsheet_safe(json.dumps(value, ensure_ascii=False)
                                               if isinstance(value, dict | list) else value)
                         for key, value in row.items()})
        if n % 1000 == 999:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


# A picture's file name inside an export's .zip, by its stored type (app/pool/images.py reads
# the type from the bytes again on import, so the suffix is for people and their tools).
_SUFFIXES = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp",
             "image/bmp": ".bmp"}
IMAGE_FOLDER = "images"


def items_zip(session: Session, project: Project, slice_: str, into: BinaryIO) -> None:
    """An image project's labelled items as a .zip an upload reads back: `items.csv` at its top (the
    items export, its `image` column naming each picture by its path in the archive) and every
    picture it names under images/, once each (two items may share one). Written into `into` (a
    spooled file: a pool of photographs is gigabytes), pictures read a chunk at a time."""
    import zipfile

    from app.models import PoolImageRow

    columns = item_columns(session, project, slice_)
    paths: dict[str, str] = {}  # digest -> path in the archive
    with zipfile.ZipFile(into, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("items.csv", "w") as table:
            for chunk in as_csv(_with_picture_paths(session, project, item_rows(session, project, slice_), paths),
                                columns):
                table.write(chunk.encode())
        digests = list(paths)
        for start in range(0, len(digests), 200):
            for digest, data in session.execute(select(PoolImageRow.digest, PoolImageRow.data).where(
                    PoolImageRow.project_id == project.id, PoolImageRow.digest.in_(digests[start:start + 200]))):
                # pictures are compressed already: stored as they are
                archive.writestr(paths[digest], data, compress_type=zipfile.ZIP_STORED)


def _with_picture_paths(session: Session, project: Project, rows: Iterator[dict], paths: dict) -> Iterator[dict]:
    from app.models import PoolImageRow

    types = dict(session.execute(select(PoolImageRow.digest, PoolImageRow.media_type)
                                 .where(PoolImageRow.project_id == project.id)).all())
    for row in rows:
        digest = row["image"]
        if digest not in paths:
            paths[digest] = f"{IMAGE_FOLDER}/{digest}{_SUFFIXES.get(types.get(digest), '')}"
        yield {**row, "image": paths[digest]}


def as_jsonl(rows: Iterator[dict]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(row, ensure_ascii=False, default=str) + "\n"


def model_bundle(session: Session, project: Project, *, include_holdout: bool = False) -> bytes:
    """The current model as a joblib file: the fitted pipeline (raw items in, labels out) and what
    it was trained on. With `include_holdout` the classifier is refitted on the holdout labels too,
    as a final model to ship once labelling is over."""
    model = session.get(ModelVersion, project.current_model_version_id) if project.current_model_version_id \
        else None
    if model is None or model.artifact is None:
        raise NotFound("this project has no trained model yet")
    pipeline = load_pipeline(model.artifact)
    n_labels = model.n_labels
    if include_holdout:
        rows = session.execute(select(Item.id, Item.final_label).where(
            Item.project_id == project.id, Item.final_label.is_not(None)).order_by(Item.id)).all()
        features = pool_features(session, project)
        ids = np.asarray([r[0] for r in rows], dtype=np.int64)
        y = np.asarray([r[1] for r in rows], dtype=object)
        classifier = build_classifier(feature_kind(project)).fit(features.X[features.rows_for(ids)], y)
        pipeline.steps[-1] = ("classifier", classifier)
        n_labels = len(y)
    bundle = {
        "pipeline": pipeline,
        "classes": [str(c) for c in pipeline.classes_],
        "kind": project.kind,
        "input": _model_input(project),
        "features": project.feature_names,
        "project": {"id": project.id, "name": project.name},
        "model_version": model.version,
        "n_labels": n_labels,
        "includes_holdout": include_holdout,
        "metrics": model.metrics,
        "library_versions": (model.metrics or {}).get("library_versions"),
        "created_at": model.created_at.isoformat(),
    }
    buffer = io.BytesIO()
    joblib.dump(bundle, buffer, compress=3)
    return buffer.getvalue()


PREDICTION_CHUNK = 5_000


def prediction_columns(session: Session, project: Project) -> list[str]:
    model = _current_model(session, project)
    # once each: two labels merged since the fit (renamed onto one) are one column
    return ["id", "predicted", "confidence", *(f"p_{c}" for c in dict.fromkeys(model.classes)), "label", "holdout",
            "model_version"]


def prediction_rows(session: Session, project: Project) -> Iterator[dict]:
    """The current model's prediction for every item of the pool, labelled or not, with its
    probability of each label: read in chunks and predicted through the model's own pipeline (its
    featurizer included), so the figures are the model's whatever the pool's cache holds. Labels
    merged since the fit get the sum of their classes' probabilities (QA: two identical columns)."""
    model = _current_model(session, project)
    pipeline = load_pipeline(model.artifact)
    # the fitted classes' names of now (model.classes follows renames), each label once
    names = list(dict.fromkeys(model.classes))
    column_of = [names.index(name) for name in model.classes]
    rows = session.execute(select(Item.external_id, Item.payload, Item.final_label, Item.is_holdout)
                           .where(Item.project_id == project.id).order_by(Item.id)
                           .execution_options(yield_per=PREDICTION_CHUNK))
    for chunk in rows.partitions(PREDICTION_CHUNK):
        fitted = pipeline.predict_proba(raw_inputs(feature_kind(project), [payload for _, payload, _, _ in chunk]))
        proba = np.zeros((len(fitted), len(names)))
        for j, k in enumerate(column_of):
            proba[:, k] += fitted[:, j]
        for (external_id, _, label, holdout), p in zip(chunk, proba, strict=True):
            b = int(p.argmax())
            yield {"id": external_id, "predicted": names[b], "confidence": round(float(p[b]), 6),
                   **{f"p_{name}": round(float(v), 6) for name, v in zip(names, p, strict=True)},
                   "label": label, "holdout": holdout, "model_version": model.version}


def _current_model(session: Session, project: Project) -> ModelVersion:
    model = session.get(ModelVersion, project.current_model_version_id) if project.current_model_version_id \
        else None
    if model is None or model.artifact is None:
        raise NotFound("this project has no trained model yet")
    return model


def raw_for_items(project: Project, items: list[Item]):
    """What an exported pipeline's `predict` takes for these items."""
    return raw_inputs(feature_kind(project), [item.payload for item in items])


def _model_input(project: Project) -> str:
    """What an exported pipeline's `predict` takes, in words."""
    kind = feature_kind(project)
    if kind == "text":
        return "a list of texts"
    if kind == "embedding":
        return f"a 2-D array of the items' embeddings ({project.embedding_dim} numbers each)"
    if kind == "image":
        return ("a 2-D array of 16 x 16 RGB thumbnail pixels, 0-255, row by row "
                "(app.pool.images.read_image(data).pixels)")
    extra = f", then the {project.embedding_dim} numbers of the embedding" if project.embedding_dim else ""
    return f"a 2-D array of rows with the features {project.feature_names}{extra}"
