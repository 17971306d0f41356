"""Importing a pool file into a project: all of it, or nothing."""

import functools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from sqlalchemy import JSON, Boolean, DateTime, func, insert, select, update
from sqlalchemy.orm import Session

from app.config import get_settings
from app.db import bulk_insert, dump_json, refresh_planner_statistics
from app.errors import DomainError, quoted
from app.labeling.service import refresh_item
from app.models import Annotation, Item, ItemState, PoolImageRow, Project, ServeSource, User, utcnow
from app.pool.content import content_hash
from app.pool.parsing import PoolParser, UploadError, detect_format
from app.training.cold_start import queue_cold_start
from app.training.features import forget
from app.training.queue import maybe_queue_training

INSERT_CHUNK = 5_000
# An image project's chunk ends sooner: its pictures' bytes are held until the chunk is stored, and
# 5,000 photographs of a few MB each would be gigabytes.
IMAGE_CHUNK_BYTES = 64 * 2**20
SKIPPED_PLACES = 20
SHUFFLE_KEYS = 2**31


@dataclass
class ImportResult:
    imported: int
    format: str
    id_column: str | None
    text_column: str | None
    feature_columns: list[str]
    meta_columns: list[str]
    image_column: str | None = None
    embedding_column: str | None = None  # the items' own embeddings (see Project.embedding_dim)
    left_out_columns: list[str] = field(default_factory=list)  # an export's bookkeeping columns
    label_column: str | None = None
    labelled: int = 0  # items that came with a label (training and holdout labels alike)
    # Rows already in the project (the same content without an id, or the same id and content):
    # left out, not added twice.
    skipped_duplicates: int = 0
    skipped_places: list[str] = field(default_factory=list)  # the first SKIPPED_PLACES of them
    labels_for_existing: int = 0  # labels such rows brought that were added to (or changed on) their items
    labels_already_there: int = 0  # labels such rows brought that their items had already (not added again)
    answers_standing: int = 0  # labels such rows brought against the importer's own card answer, which stands
    # rows repeating an earlier row of the file (or naming the same item) with another label: the
    # first label stands, and these are left out
    conflicting_labels: int = 0
    conflicting_places: list[str] = field(default_factory=list)  # the first SKIPPED_PLACES, with both labels
    not_accepted: int = 0  # Prodigy answers "reject" or "ignore": imported unlabelled
    unnamed_images: int = 0  # pictures in a .zip its table does not name: no items
    unnamed_image_names: list[str] = field(default_factory=list)  # the first SKIPPED_PLACES of them


class ImportRefused(DomainError):
    status_code = 422

    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


def import_pool(session: Session, *, project: Project, fileobj: BinaryIO, filename: str | None,
                fmt: str | None = None, text_column: str | None = None, id_column: str | None = None,
                feature_columns: list[str] | None = None, label_column: str | None = None,
                embedding_column: str | None = None, imported_by: User | None = None,
                on_progress: Callable[[int, int | None, str], None] | None = None) -> ImportResult:
    """Stream `fileobj` into `project` in bulk inserts. Any problem raises ImportRefused and
    nothing of the file stays (a savepoint is rolled back, whatever the caller then does).

    With `label_column`, the rows' labels become annotations by `imported_by` (source `import`).
    The column is only ever the one named: a column called `label` is not picked up by itself.
    Deciding that from the values would need the whole file read before the first insert (the
    import streams), and a file whose `label` column holds gold answers kept aside for evaluation
    (or another project's taxonomy) would silently turn into training labels, where it was
    metadata before. Naming the column is one word for the user and never surprises them.

    `on_progress(rows, bytes_read, phase)` is called after every chunk of rows is inserted (phase
    "reading"; bytes_read is the position in `fileobj` where it can tell, else None) and once the
    file is read (phase "finishing": statistics and the follow-up jobs, before the caller commits).
    """
    with session.begin_nested():
        return _import(session, project=project, fileobj=fileobj, filename=filename, fmt=fmt,
                       text_column=text_column, id_column=id_column, feature_columns=feature_columns,
                       label_column=label_column or None, embedding_column=embedding_column or None,
                       imported_by=imported_by,
                       on_progress=on_progress)


def _position(fileobj) -> int | None:
    try:
        return fileobj.tell()
    except (OSError, ValueError, AttributeError):
        return None


def _import(session: Session, *, project: Project, fileobj: BinaryIO, filename: str | None,
            fmt: str | None, text_column: str | None, id_column: str | None,
            feature_columns: list[str] | None, label_column: str | None, embedding_column: str | None,
            imported_by: User | None, on_progress: Callable | None = None) -> ImportResult:
    try:
        fmt = detect_format(filename, fmt)
    except UploadError as exc:
        raise ImportRefused(exc.errors) from None
    if label_column and imported_by is None:
        raise ValueError("importing labels needs the user they are recorded under")
    if project.kind == "tabular" and project.feature_names and not feature_columns:
        feature_columns = project.feature_names
    existing_count = session.scalar(select(func.count()).select_from(Item).where(Item.project_id == project.id)) or 0
    parser = PoolParser(fileobj, kind=project.kind, fmt=fmt, text_column=text_column,
                        id_column=id_column, feature_columns=feature_columns,
                        label_column=label_column, labels=project.labels,
                        max_decoded_bytes=get_settings().max_upload_bytes,
                        embedding_column=embedding_column, embedding_dim=project.embedding_dim,
                        embeddings_wanted=bool(project.embedding_dim) if existing_count else None)
    rng = random.Random()
    # The holdout is a uniform random slice of the pool fixed at import: the items whose random key
    # falls below the project's fraction. The strategy never ranks them, so the labelled part of the
    # holdout stays an unbiased sample however the strategy chooses. The draw ignores imported labels:
    # a labelled row lands in the holdout as often as any other, and its label is then a holdout
    # label (measured on, never trained on). Keeping labelled rows out would make the holdout a
    # sample of the rest of the file only, and a file labelled in full would get no holdout at all.
    holdout_below = int(project.holdout_fraction * SHUFFLE_KEYS)
    # One imported label is one answer, as if the importing user had given it: with
    # annotations_per_item above one the item stays open for the other opinions.
    labelled_state = ItemState.done if project.annotations_per_item <= 1 else ItemState.open
    now = utcnow()
    batch: list[dict] = []
    batch_labels: list[str | None] = []
    rows_read = labelled = training_labels = skipped = 0
    skipped_places: list[str] = []
    known_contents: dict[int, int] | None = None  # content hash -> item id, read at the first row without an id
    labels_for_existing: list[tuple[int, str]] = []  # (item id, label) brought by rows left out
    labels_for_repeats: list[tuple[int, str]] = []  # (content hash, label) of rows repeating this file's
    file_contents: set[int] = set()  # content hashes of this file's rows without an id, kept
    # item (its id when the row gives one, else its content hash) -> (label, place) of the first row
    # of this file to bring one for it: a later row saying otherwise is a conflict, not a correction
    file_labels: dict[tuple, tuple[str, str]] = {}
    conflicting = 0
    conflicting_places: list[str] = []
    next_number = existing_count + 1  # the name of the next row without an id
    batch_image_bytes = 0

    def name_rows_without_id() -> None:
        """A row without an id is named by its place, the number after the project's items so far;
        a number some earlier file gave as its own id is passed over (the user cannot rename a row
        that has no id)."""
        nonlocal next_number
        unnamed = [row for row in batch if row["external_id"] is None]
        while unnamed:
            for row in unnamed:
                row["external_id"], next_number = str(next_number), next_number + 1
            if not existing_count:
                return
            taken = set(_known_ids(session, project, [row["external_id"] for row in unnamed]))
            unnamed = [row for row in unnamed if row["external_id"] in taken]

    def label_conflicts(row: dict, label: str | None) -> bool:
        """Whether the row's label contradicts one an earlier row of the file gave the same item."""
        nonlocal conflicting
        if label is None:
            return False
        item = ("id", row["external_id"]) if row["_explicit_id"] else ("content", row["content_hash"])
        first = file_labels.setdefault(item, (label, row["_line"][1]))
        if first[0] == label:
            return False
        conflicting += 1
        if len(conflicting_places) < SKIPPED_PLACES:
            conflicting_places.append(f"{row['_line'][1]} ({quoted(label)}, where {first[1]} has {quoted(first[0])})")
        return True

    def flush_batch() -> None:
        nonlocal labelled, training_labels, skipped, known_contents
        # Rows already in the project are left out, not added twice, and the result says where they
        # were: a row without an id whose content an item has (a file uploaded again, or a new file
        # repeating old rows) or an earlier row of this file has, or a row whose id an item has with
        # the same content (a file grown by a few rows). An id an item has with other content is
        # refused: it names another item. A label such a row brings goes to the item it repeats.
        if existing_count and known_contents is None and not all(row["_explicit_id"] for row in batch):
            known_contents = _contents(session, project)
        there = _known_items(session, project, [row for row in batch if row["_explicit_id"]]) \
            if existing_count else {}
        keep = []
        for row, label in zip(batch, batch_labels, strict=True):
            repeat = False
            if row["_explicit_id"]:
                item_id = there.get(row["external_id"])
            else:
                item_id = known_contents.get(row["content_hash"]) if known_contents else None
                repeat = item_id is None and row["content_hash"] in file_contents
                if item_id is None and not repeat:
                    file_contents.add(row["content_hash"])
            keep.append(item_id is None and not repeat)
            conflict = label_conflicts(row, label)
            if not keep[-1]:
                skipped += 1
                labelled -= label is not None
                training_labels -= label is not None and not row["is_holdout"]
                if label is not None and not conflict:
                    (labels_for_existing.append((item_id, label)) if item_id is not None
                     else labels_for_repeats.append((row["content_hash"], label)))
                if len(skipped_places) < SKIPPED_PLACES:
                    skipped_places.append(row["_line"][1])
        if not all(keep):
            batch[:] = [row for row, kept in zip(batch, keep, strict=True) if kept]
            batch_labels[:] = [label for label, kept in zip(batch_labels, keep, strict=True) if kept]
        name_rows_without_id()
        images = {}
        for row in batch:
            image = row.pop("_image")
            if image is not None:
                images[image.digest] = image
            del row["_explicit_id"], row["_line"]
        if images:
            _store_images(session, project, images)
        if any(label is not None for label in batch_labels):
            # The new ids come back from the same bulk insert (RETURNING), keyed by external id (unique
            # in the project), so the chunk's annotations are one more bulk insert: no lookups. Two
            # settings keep it one batched statement: render_nulls, since the ORM otherwise leaves out
            # the None labels and splits the chunk wherever labelled and unlabelled rows alternate; and
            # no sort_by_parameter_order, which on SQLite sends one row per statement.
            ids = dict(session.execute(insert(Item).returning(Item.external_id, Item.id)
                                       .execution_options(render_nulls=True), batch).all())
            session.execute(insert(Annotation), [
                {"project_id": project.id, "item_id": ids[row["external_id"]], "user_id": imported_by.id,
                 "label": label, "skipped": False, "created_at": now, "updated_at": now, "seconds_spent": None,
                 "source": ServeSource.imported, "strategy": None, "score": None, "model_version": None}
                for row, label in zip(batch, batch_labels, strict=True) if label is not None])
        elif batch:  # (empty when every row of the chunk was already in the project)
            _insert_items(session, batch)
        batch.clear()
        batch_labels.clear()
        if on_progress is not None:
            on_progress(rows_read - skipped, _position(fileobj), "reading")

    for parsed in parser:
        if parser.errors:
            continue  # keep reading to report more problems, but insert nothing more
        rows_read += 1
        shuffle_key = rng.getrandbits(31)
        is_holdout = shuffle_key < holdout_below
        label = parsed.label
        if label is not None:
            labelled += 1
            training_labels += not is_holdout
        batch.append({
            "project_id": project.id,
            "external_id": parsed.external_id,  # or named when its batch is stored (name_rows_without_id)
            "payload": parsed.payload,
            "content_hash": content_hash(parsed.payload, parsed.meta if project.kind == "tabular" else None),
            "meta": parsed.meta,
            "state": labelled_state if label is not None else ItemState.open,
            "n_annotations": 1 if label is not None else 0,
            "final_label": label,
            "shuffle_key": shuffle_key,
            "is_holdout": is_holdout,
            "created_at": now,  # one value for the file (a default would call utcnow per row)
            "_line": (parsed.line, parsed.where),
            "_explicit_id": parsed.external_id is not None,
            "_image": parsed.image,
        })
        batch_labels.append(label)
        batch_image_bytes += len(parsed.image.data) if parsed.image is not None else 0
        if len(batch) >= INSERT_CHUNK or batch_image_bytes >= IMAGE_CHUNK_BYTES:
            flush_batch()
            batch_image_bytes = 0
    if parser.errors:
        raise ImportRefused(parser.errors)
    if batch:
        flush_batch()
    if on_progress is not None:
        on_progress(rows_read - skipped, _position(fileobj), "finishing")
    if labels_for_repeats:  # the items this file's earlier rows became
        session.flush()
        by_hash = _items_by_content(session, project, {h for h, _ in labels_for_repeats})
        labels_for_existing += [(by_hash[h], label) for h, label in labels_for_repeats]
    labels_added, labels_already, answers_standing = (
        _add_labels(session, project, imported_by, labels_for_existing) if labels_for_existing else (0, 0, 0))
    plan = parser.plan
    if project.kind == "tabular" and not project.feature_names:
        project.feature_names = plan.feature_columns
    if project.embedding_dim is None and parser.embedding_dim and rows_read - skipped:
        project.embedding_dim = parser.embedding_dim
    session.flush()
    refresh_planner_statistics(session, "items", *(["annotations"] if labelled else []))
    forget(project.id)
    queue_cold_start(session, project=project)
    if training_labels:
        # The counter refresh_item keeps, moved by the whole file at once (the labels for items
        # already there moved it in _add_labels, one item at a time)
        session.execute(update(Project).where(Project.id == project.id)
                        .values(n_training_labels=Project.n_training_labels + training_labels)
                        .execution_options(synchronize_session=False))
    if training_labels or labels_added:
        # then the same rule as after a submit: a retrain once batch_size new training labels are in
        # (and two classes). QA: labels a file brought for items already imported never queued one.
        maybe_queue_training(session, project=project)
    return ImportResult(imported=rows_read - skipped, format=fmt, id_column=plan.id_column,
                        text_column=plan.text_column, feature_columns=plan.feature_columns,
                        image_column=plan.image_column, embedding_column=plan.embedding_column,
                        meta_columns=plan.meta_columns, left_out_columns=plan.left_out,
                        label_column=plan.label_column, labelled=labelled,
                        skipped_duplicates=skipped, skipped_places=skipped_places,
                        labels_for_existing=labels_added, labels_already_there=labels_already,
                        answers_standing=answers_standing, not_accepted=parser.not_accepted,
                        conflicting_labels=conflicting, conflicting_places=conflicting_places,
                        unnamed_images=len(parser.unnamed_images),
                        unnamed_image_names=parser.unnamed_images[:SKIPPED_PLACES])


def _insert_items(session: Session, rows: list[dict]) -> None:
    """Bulk insert of new, unlabelled items (dicts of the same keys), straight to the driver
    (`bulk_insert`), their values converted here as SQLAlchemy's column types would: JSON by the
    same serializer, and on SQLite datetimes and booleans by the types' own bind processors."""
    if not rows:
        return
    dialect = session.get_bind().dialect
    table = Item.__table__
    columns = list(rows[0])
    converters = []
    for name in columns:
        column_type = table.c[name].type
        if isinstance(column_type, JSON):
            converters.append(dump_json)
        elif dialect.name == "sqlite" and isinstance(column_type, DateTime | Boolean):
            convert = column_type.bind_processor(dialect)
            # one import has one timestamp and two booleans: convert each once
            converters.append(functools.lru_cache(maxsize=8)(convert) if convert else None)
        else:
            converters.append(None)
    bulk_insert(session, table.name, columns, [
        tuple(value if convert is None else convert(value)
              for value, convert in zip(row.values(), converters, strict=True)) for row in rows])


IN_LIST = 500  # values per SQL IN (...) list: well under SQLite's and PostgreSQL's limits


def _in_lists(values: list) -> Iterator[list]:
    """`values` in slices of IN_LIST, one look-up query each."""
    for start in range(0, len(values), IN_LIST):
        yield values[start:start + IN_LIST]


def _store_images(session: Session, project: Project, images: dict) -> None:
    """The chunk's pictures not stored yet (by digest: a picture already in the project is kept once)."""
    digests = sorted(images)
    for part in _in_lists(digests):
        for digest in session.scalars(select(PoolImageRow.digest).where(
                PoolImageRow.project_id == project.id, PoolImageRow.digest.in_(part))):
            images.pop(digest)
    if images:
        session.execute(insert(PoolImageRow), [
            {"project_id": project.id, "digest": image.digest, "media_type": image.media_type,
             "width": image.width, "height": image.height, "data": image.data} for image in images.values()])


def _contents(session: Session, project: Project) -> dict[int, int]:
    """The project's items by content hash (from before this import: this one's rows are compared
    with what was there, not with each other). About 2 s and 100 MB at a million items."""
    return dict(session.execute(select(Item.content_hash, Item.id).where(
        Item.project_id == project.id, Item.content_hash.is_not(None)).execution_options(yield_per=50_000)).all())


def _items_by_content(session: Session, project: Project, hashes: set[int]) -> dict[int, int]:
    """content hash -> item id for these hashes (the first item with each)."""
    found: dict[int, int] = {}
    ordered = sorted(hashes)
    for part in _in_lists(ordered):
        for content, item_id in session.execute(select(Item.content_hash, Item.id).where(
                Item.project_id == project.id, Item.content_hash.in_(part))
                .order_by(Item.id)):
            found.setdefault(content, item_id)
    return found


def _known_ids(session: Session, project: Project, ids: list[str]) -> list[str]:
    """Those of `ids` that items of the project already have."""
    known: list[str] = []
    for part in _in_lists(ids):
        known += session.scalars(select(Item.external_id).where(
            Item.project_id == project.id, Item.external_id.in_(part))).all()
    return known


def _known_items(session: Session, project: Project, rows: list[dict]) -> dict[str, int]:
    """external id -> item id for the rows whose id an item of the project has with the same content;
    an id an item has with other content refuses the whole upload, naming its places."""
    if not rows:
        return {}
    by_id = {row["external_id"]: row for row in rows}
    ids, found = list(by_id), {}
    for part in _in_lists(ids):
        found.update({external_id: (item_id, content) for external_id, item_id, content in session.execute(
            select(Item.external_id, Item.id, Item.content_hash).where(
                Item.project_id == project.id, Item.external_id.in_(part)))})
    other = sorted((by_id[i]["_line"] for i, (_, content) in found.items() if content != by_id[i]["content_hash"]))
    if other:
        what = {"text": "text", "image": "image"}.get(project.kind, "features")
        names = {by_id[i]["_line"]: i for i in found}
        more = [f"and {len(other) - 20} more ids of this file are already in the project"] if len(other) > 20 else []
        raise ImportRefused([f"{where}: id {names[(line, where)]!r} is already in this project, with another {what}; "
                             "give this row an id of its own" for line, where in other[:20]] + more)
    return {external_id: item_id for external_id, (item_id, _) in found.items()}


def _add_labels(session: Session, project: Project, importer: User,
                labels: list[tuple[int, str]]) -> tuple[int, int, int]:
    """Labels a file brought for items already in the project: each is the importer's answer on its
    item (added, or changed if the importer's earlier import said otherwise). An answer the importer
    gave on a card stands. A label the item already has, from anyone's answer or an adjudication,
    is not added again: the project's own labels export uploaded back, or one labelled file
    uploaded by two admins, is the same answers coming round again, not new opinions; counting them
    would turn every item into two agreeing answers, and a later correction into a tie. Returns how many labels were
    added or changed, how many the items already had, and how many met a card answer that stands."""
    mine, given = {}, {}
    ids = [item_id for item_id, _ in labels]
    for part in _in_lists(ids):
        for answer in session.scalars(select(Annotation).where(Annotation.item_id.in_(part))):
            if answer.user_id == importer.id:
                mine[answer.item_id] = answer
            if not answer.skipped:
                given.setdefault(answer.item_id, set()).add(answer.label)
        for item_id, decided in session.execute(select(Item.id, Item.adjudicated_label).where(
                Item.id.in_(part), Item.adjudicated_label.is_not(None))):
            given.setdefault(item_id, set()).add(decided)  # an export's label for an adjudicated item
    now, changed, already, standing = utcnow(), 0, 0, 0
    for item_id, label in labels:
        answer = mine.get(item_id)
        if answer is not None and answer.source != ServeSource.imported and answer.label != label:
            standing += 1
            continue
        if (answer is not None and answer.label == label) or \
                (answer is None and label in given.get(item_id, ())):
            already += 1
            continue
        if answer is None:
            mine[item_id] = answer = Annotation(
                project_id=project.id, item_id=item_id, user_id=importer.id, label=label, skipped=False,
                created_at=now, updated_at=now, source=ServeSource.imported)
            session.add(answer)
        else:
            answer.label, answer.updated_at = label, now
        given.setdefault(item_id, set()).add(label)
        changed += 1
        session.flush()
        refresh_item(session, project=project, item=session.get(Item, item_id))
    return changed, already, standing
