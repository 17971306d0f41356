"""Reading pool files (CSV, JSONL, Parquet) into items, with errors that name line and column.

The parser is a generator so an import can stream: it yields items as it reads, and collects
problems in `errors` instead of stopping at the first one, so one upload reports several
mistakes at once. The caller commits nothing unless `errors` is empty at the end.
"""

import csv
import io
import itertools
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from app.pool.images import MAX_IMAGE_BYTES, ImageProblem, PoolImage, image_bytes, read_image

MAX_ERRORS = 20
MAX_FIELD_BYTES = 10 * 1024 * 1024
# Metadata nested deeper than this is refused: storing and showing it would recurse that deep.
MAX_NESTING = 32
PARQUET_BATCH_ROWS = 1_000
# A CSV export puts an apostrophe before a cell a spreadsheet would run as a formula
# (app/dashboard/export.py); reading a CSV takes it off again, so an export imports as it was.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# A labelloop item export's account of the project it came from (app/dashboard/export.py): in
# another project they are no data about the item, and n_annotations, a number, would otherwise be
# taken for a feature of a table. Left out when a file has all of them and a label column.
EXPORT_BOOKKEEPING = ("holdout", "n_annotations", "adjudicated")
csv.field_size_limit(MAX_FIELD_BYTES)

# tsv: CSV with tabs; txt: one text per line, no header (Prodigy's and Label Studio's plain text);
# json: an array of objects (a Label Studio or generic JSON export), or JSON Lines under that name
# zip: images (image projects), with at most one table at its top naming them (the "manifest")
FORMATS = ("csv", "tsv", "txt", "jsonl", "json", "parquet", "zip")
TABLE_FORMATS = ("csv", "tsv", "jsonl", "json", "parquet")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp")


class UploadError(ValueError):
    """The file cannot be imported; `errors` holds one sentence per problem."""

    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


class _TooManyErrors(Exception):
    """Reading stops: MAX_ERRORS problems found, or one that nothing more can be read past."""


class _CannotGoOn(Exception):
    """The file cannot be read past the problem just recorded (a broken quote, the wrong encoding)."""


@dataclass
class ParsedItem:
    line: int  # the line, row or array item number
    external_id: str | None
    payload: dict
    meta: dict
    label: str | None = None  # from the label column, when one was chosen; None: unlabelled
    where: str = ""  # how a message names its place: "line 3", "row 3", "item 3 of the array"
    image: PoolImage | None = None  # image projects: the checked image (payload["image"] is its digest)


# Column names that say "a key or a row number" (pandas writes its index as "Unnamed: 0")
ID_LIKE = re.compile(r"(?i)(row[ _]?(id|no|num|number)|index|idx|unnamed: ?\d+|\w*[_ ]id|id[_ ]\w*)")


# Column names that say "the answer": never guessed to be features
ANSWER_LIKE = re.compile(r"(?i)(labels?|target|class|gold|answer|category|outcome|truth|ground[ _]truth|y_true)")

# Column names that say "a vector of numbers made by some model": the item's embedding
EMBEDDING_LIKE = re.compile(r"(?i)(embeddings?|vectors?|emb)")
# Column names that say "the image" in an image project's file
IMAGE_LIKE = ("image", "img", "picture", "file", "filename", "file_name", "path", "image_path")


@dataclass
class ColumnPlan:
    """Which columns of the file play which part; decided from the header or first record."""

    id_column: str | None = None
    text_column: str | None = None
    image_column: str | None = None
    embedding_column: str | None = None
    label_column: str | None = None
    feature_columns: list[str] = field(default_factory=list)
    meta_columns: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # an export's bookkeeping (EXPORT_BOOKKEEPING)

    def unclaimed(self, columns, *, features: bool = True) -> list[str]:
        """`columns` that no role takes (metadata, or candidate features with `features=False`)."""
        taken = {self.id_column, self.text_column, self.image_column, self.embedding_column, self.label_column,
                 *self.left_out,
                 *(self.feature_columns if features else ())}
        return [c for c in columns if c not in taken]


MAX_LABELS = 100  # as many as a project takes (app/projects/schemas.py)


def labels_in_column(fileobj: BinaryIO, filename: str | None, column: str, *, kind: str,
                     max_decoded_bytes: int | None = None) -> tuple[dict[str, int], list[str]]:
    """The labels `column` of a pool file holds, with their row counts, for a new project's label
    set ("taken from a column"), read the way an upload with that label column reads them; and the
    problems met, one sentence each."""
    try:
        fmt = detect_format(filename)
    except UploadError as exc:
        return {}, exc.errors
    parser = PoolParser(fileobj, kind=kind, fmt=fmt, max_decoded_bytes=max_decoded_bytes)
    found = parser.column_labels(column, MAX_LABELS)
    return found, parser.errors


def column_list(text: str | None) -> list[str] | None:
    """Column names typed comma-separated in a form or an API call ("f1, f2"); None for none."""
    return [name.strip() for name in (text or "").split(",") if name.strip()] or None


def detect_format(filename: str | None, declared: str | None = None) -> str:
    if declared:
        if declared not in FORMATS:
            raise UploadError([f"unknown format {declared!r}: use one of {', '.join(FORMATS)}"])
        return declared
    name = (filename or "").lower()
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if name.endswith(".json"):
        return "json"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith(".tsv"):
        return "tsv"
    if name.endswith(".txt"):
        return "txt"
    if name.endswith(".zip"):
        return "zip"
    if name.endswith(".csv") or not name:
        return "csv"
    raise UploadError([f"cannot tell the format of {filename!r}: name it .csv, .tsv, .txt, .jsonl, .json, "
                       ".parquet or .zip"])


class PoolParser:
    """Iterate over a pool file's items; look at `errors` and `plan` afterwards."""

    def __init__(
        self,
        fileobj: BinaryIO,
        *,
        kind: str,
        fmt: str,
        text_column: str | None = None,
        id_column: str | None = None,
        feature_columns: list[str] | None = None,
        label_column: str | None = None,
        labels: Iterable[str] | None = None,
        max_decoded_bytes: int | None = None,
        embedding_column: str | None = None,
        embedding_dim: int | None = None,
        embeddings_wanted: bool | None = None,
    ):
        """`label_column` names the column of pre-annotated labels; its values must be among `labels`
        (the project's), and an empty cell leaves the item unlabelled. `max_decoded_bytes` bounds
        what a compressed (Parquet, zip) file may expand to, so a small file cannot fill memory and disk.

        An embedding column (named, or one named like EMBEDDING_LIKE) gives each item a vector the
        model learns from. `embedding_dim` is the length the project's earlier items fixed;
        `embeddings_wanted` says whether the project's items have them (True), have none (False: a
        column now would cover only some items), or the project is empty (None: either)."""
        if label_column and labels is None:
            raise ValueError("a label column needs the project's labels to check its values against")
        self.fileobj = fileobj
        self.kind = kind
        self.fmt = fmt
        self.requested_text_column = text_column or None
        self.requested_id_column = id_column or None
        self.requested_features = list(feature_columns) if feature_columns else None
        self.requested_label_column = label_column or None
        self.labels = list(labels) if labels is not None else []
        self._label_set = frozenset(self.labels)
        self.errors: list[str] = []
        # Where reading lost its footing (an open quote, a JSON array broken off): the index in
        # `errors` of that problem. On a file's head, cut anywhere, that is the cut, not the file.
        self.lost_track_at: int | None = None
        self.plan: ColumnPlan | None = None
        self.columns: list[str] = []
        self.rows_read = 0
        self._seen_ids: dict[str, str] = {}
        self._auto_features = False
        self.max_decoded_bytes = max_decoded_bytes
        self.not_accepted = 0  # Prodigy answers "reject" / "ignore": rows left unlabelled
        self.requested_embedding_column = embedding_column or None
        self.embedding_dim = embedding_dim
        self.embeddings_wanted = embeddings_wanted
        self._archive: dict | None = None  # a .zip being read: its members by name, which hold the images
        self._zipfile = None
        self._rows_are_files = False  # a .zip without a table: each row is one of its files (the messages say so)
        self._named_members: set[str] = set()  # the .zip's files its table's rows named
        # pictures in the .zip its table does not name: no item, and the result lists them (a table
        # of a sample of the folder is fine; a misspelt column of names is not, and shows here)
        self.unnamed_images: list[str] = []
        self._dim_from = "each embedding of this project"  # what fixed embedding_dim, for the messages

    # -- public -------------------------------------------------------------------------
    def __iter__(self) -> Iterator[ParsedItem]:
        try:
            for where, line, record in self._records():
                if self.plan is None:
                    self.plan = self._plan(list(record))
                    if self.plan is None:
                        return
                item = self._to_item(where, line, record)
                if item is not None:
                    yield item
            if self.rows_read == 0 and not self.errors:
                self._error("the file has no rows to import" if self.columns
                            else "the file is empty")
        except _TooManyErrors:
            if len(self.errors) >= MAX_ERRORS:  # (else a problem nothing more can be read past)
                self.errors.append(f"stopped after {MAX_ERRORS} problems; fix these and upload again")
        except _CannotGoOn:
            self.errors.append("the rest of the file could not be read past this; fix it and upload again")

    # -- readers: yield (where, line number, record dict) -------------------------------------
    def _records(self) -> Iterator[tuple[str, int, dict]]:
        records = {"csv": self._csv_records, "tsv": self._csv_records, "txt": self._txt_records,
                   "jsonl": self._jsonl_records, "json": self._json_records,
                   "parquet": self._parquet_records, "zip": self._zip_records}[self.fmt]()
        for where, line, record in records:
            self.rows_read += 1
            if self.fmt in ("jsonl", "json"):
                record = _label_studio_task(record)
                if self.plan is None:
                    self.columns = list(record)
            yield where, line, record

    def _decoded_lines(self) -> Iterator[str]:
        for lineno, raw in enumerate(self.fileobj, 1):
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            elif lineno == 1 and (raw.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in raw):
                self._error("the file is UTF-16 (it starts with a UTF-16 byte order mark, or its first line has NUL "
                            "bytes between its letters); save it as UTF-8")
                raise _CannotGoOn
            if b"\x00" in raw:
                self._error(f"line {lineno}: holds a NUL character (byte 0x00), which cannot be stored as text; "
                            "take it out")
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                self._error(f"line {lineno}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at "
                            f"position {exc.start + 1}); save the file as UTF-8")
                # read on (nothing is imported now) so that every bad line is named, up to the limit
                yield raw.decode("utf-8", errors="replace")

    def _csv_records(self) -> Iterator[tuple[str, int, dict]]:
        lines = self._decoded_lines()
        delimiter = "\t" if self.fmt == "tsv" else ","
        if self.fmt == "csv":
            first = next(lines, "")
            lines = itertools.chain([first], lines)
            if ";" in first and "," not in first and "\t" not in first:
                # Excel's CSV in most European locales: a header of names apart by semicolons
                delimiter = ";"
        reader = csv.reader(lines, strict=True, delimiter=delimiter)
        try:
            header = next(reader, None)
        except csv.Error as exc:
            self._error(f"line 1: {exc}")
            return
        if not header or all(not h.strip() for h in header):
            return
        header = [_unguarded(h.strip()) for h in header]
        if not self._check_header(header, "line 1"):
            return
        self.columns = header
        prev_end = reader.line_num
        while True:
            start = prev_end + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                self.lost_track_at = len(self.errors)
                if "field larger than field limit" in str(exc):
                    self._error(f"line {start}: a field is longer than {MAX_FIELD_BYTES:,} characters (the most a "
                                "cell may hold), or an opening quote is never closed; the file could not be read "
                                "past it")
                else:
                    self._error(f"line {start}: broken CSV ({exc}); check the quotes on this line")
                raise _CannotGoOn from None  # the reader cannot resynchronise after this
            prev_end = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            if len(row) != len(header):
                self._error(f"line {start}: expected {len(header)} fields, found {len(row)}")
                continue
            if "'" in "".join(row):  # (one C-speed test per row; the cell by cell look only where needed)
                row = [_unguarded(cell) for cell in row]
            yield f"line {start}", start, dict(zip(header, row, strict=True))

    def _txt_records(self) -> Iterator[tuple[str, int, dict]]:
        if self.kind != "text":
            self._error("a .txt file holds one text per line: it suits text projects; for rows of numbers "
                        "upload CSV, JSON Lines or Parquet")
            raise _CannotGoOn
        self.columns = ["text"]
        for lineno, line in enumerate(self._decoded_lines(), 1):
            text = line.rstrip("\r\n")
            if text.strip():
                yield f"line {lineno}", lineno, {"text": text}

    def _json_records(self) -> Iterator[tuple[str, int, dict]]:
        """An array of objects, streamed one object at a time by ijson (the file may be large; its
        items are named by their place in the array). JSON Lines under a .json name read as such."""
        import ijson

        head = self.fileobj.read(4096)
        self.fileobj.seek(0)
        if not head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"["):
            yield from self._jsonl_records()
            return
        number = 0
        try:
            for number, record in enumerate(ijson.items(self.fileobj, "item", use_float=True), 1):
                if not isinstance(record, dict):
                    self._error(f"item {number} of the array: expected a JSON object, found {type(record).__name__}")
                    continue
                if not self.columns:
                    self.columns = list(record)
                yield f"item {number} of the array", number, record
        except ijson.JSONError as exc:
            self.lost_track_at = len(self.errors)
            # yajl's message draws an arrow over several lines: its first line is the sentence
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
            if "premature EOF" in reason or "Incomplete JSON" in reason:
                self._error(f"the file ends inside item {number + 1} of the array, before the array is closed "
                            "(a file cut short?)")
            else:
                self._error(f"item {number + 1} of the array: invalid JSON ({reason})")
            raise _CannotGoOn from None

    def _jsonl_records(self) -> Iterator[tuple[str, int, dict]]:
        for lineno, text in enumerate(self._decoded_lines(), 1):
            if not text.strip():
                continue
            try:
                # (without its line break: a problem at the end of the line is then at its column there,
                # not at column 1 of a line after it)
                record = json.loads(text.rstrip("\r\n"))
            except json.JSONDecodeError as exc:
                self._error(f"line {lineno}: invalid JSON ({exc.msg} at column {exc.colno})")
                continue
            except RecursionError:
                self._error(f"line {lineno}: the JSON is nested too deeply to read")
                continue
            if not isinstance(record, dict):
                self._error(f"line {lineno}: expected a JSON object, found {type(record).__name__}")
                continue
            if not self.columns:
                self.columns = list(record)
            yield f"line {lineno}", lineno, record

    def _parquet_records(self) -> Iterator[tuple[str, int, dict]]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            pfile = pq.ParquetFile(self.fileobj)
        except (pa.ArrowInvalid, OSError) as exc:
            self._error(f"not a readable Parquet file ({exc})")
            return
        header = [str(name) for name in pfile.schema_arrow.names]
        if not self._check_header(header, "schema"):
            return
        self.columns = header
        row_number = decoded = 0
        # Small batches, each measured before it becomes Python objects: Parquet's dictionary
        # encoding and compression let a file of a few KB hold gigabytes of repeated text.
        for batch in pfile.iter_batches(batch_size=PARQUET_BATCH_ROWS):
            decoded += sum(_decoded_nbytes(column) for column in batch.columns)
            if self.max_decoded_bytes is not None and decoded > self.max_decoded_bytes:
                self._error(f"rows {row_number + 1}-{row_number + batch.num_rows}: the file expands to more than "
                            f"{self.max_decoded_bytes // 2**20} MB of data once decompressed, above the upload "
                            "limit; split it into smaller files")
                raise _CannotGoOn
            for record in batch.to_pylist():
                row_number += 1
                yield f"row {row_number}", row_number, record

    def _zip_records(self) -> Iterator[tuple[str, int, dict]]:
        """A .zip of images. With one table at its top (CSV, TSV, JSON Lines, JSON or Parquet), that
        table's rows are the items and its image column names their files in the archive. Without
        one, every image is an item: its id is its path in the archive and column `folder` (its
        folder's name) is metadata, or its label when `folder` is chosen as the label column (the
        one-folder-per-label layout of image datasets)."""
        import zipfile

        if self.kind != "image":
            self._error("a .zip is read only in image projects (pictures, with or without a table of them); "
                        f"upload this {self.kind} project's rows as CSV, JSON Lines, JSON or Parquet, unzipped")
            return
        try:
            archive = zipfile.ZipFile(self.fileobj)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            self._error(f"not a readable .zip file ({exc})")
            return
        members, unsafe = [], []
        for info in archive.infolist():
            name = member_name(info.filename)
            base = name.rsplit("/", 1)[-1]
            if info.is_dir() or name.startswith("__MACOSX/") or base.startswith(".") or base.lower() in NOT_DATA \
                    or base.lower().startswith(("readme", "license", "licence")):
                continue  # a packer's own files, and a dataset's notes: no items
            if ".." in name.split("/"):
                unsafe.append(info.filename)
            members.append((name, info))
        if unsafe:
            self._error(f"the .zip names files outside itself ({', '.join(map(repr, unsafe[:5]))}): a path with '..' "
                        "cannot be an item's name; pack the pictures again from their folder")
            return
        tops = {name.split("/", 1)[0] for name, _ in members}
        if len(tops) == 1 and all("/" in name for name, _ in members):
            # "Compress this folder" packs everything one folder down (data/items.csv, data/cat/1.png):
            # that folder is the archive's top (QA: such a table was called "neither images nor a table")
            members = [(name.split("/", 1)[1], info) for name, info in members]
        expands_to = sum(info.file_size for _, info in members)
        if self.max_decoded_bytes is not None and expands_to > self.max_decoded_bytes:
            self._error(f"the .zip expands to {expands_to // 2**20} MB once unpacked, above the upload limit of "
                        f"{self.max_decoded_bytes // 2**20} MB; split it into smaller files")
            raise _CannotGoOn
        self._archive = dict(members)
        self._zipfile = archive
        tables = [name for name in self._archive if "/" not in name and not name.lower().endswith(IMAGE_SUFFIXES)
                  and _table_format(name) is not None]
        if len(tables) > 1:
            self._error(f"the .zip holds {len(tables)} tables at its top ({', '.join(map(repr, tables))}); keep one, "
                        "naming the images")
            return
        if tables:
            self.fmt = _table_format(tables[0])
            self.fileobj = io.BytesIO(archive.read(self._archive[tables[0]]))
            readers = {"csv": self._csv_records, "tsv": self._csv_records, "jsonl": self._jsonl_records,
                       "json": self._json_records, "parquet": self._parquet_records}
            for where, line, record in readers[self.fmt]():
                yield f"{tables[0]} {where}", line, record
            # (every row has been converted by now: the reader resumes only once the last is taken)
            self.unnamed_images = sorted(name for name in self._archive if name.lower().endswith(IMAGE_SUFFIXES)
                                         and name not in self._named_members)
            return
        others = [name for name in self._archive if not name.lower().endswith(IMAGE_SUFFIXES)]
        deeper = [name for name in others if _table_format(name) is not None]
        if deeper:
            self._error(f"the .zip's table must be at its top, found {', '.join(map(repr, deeper[:3]))}; move it up "
                        "beside the folders of pictures, naming them by their paths from there")
            return
        if others:
            self._error(f"the .zip holds files that are neither images nor a table naming them: "
                        f"{', '.join(map(repr, others[:5]))}{' and more' if len(others) > 5 else ''}; take them out "
                        "(a README or LICENSE may stay)")
            return
        self.columns = ["id", "image", "folder"]
        self._rows_are_files = True
        for number, name in enumerate(sorted(self._archive), 1):
            folder = name.rsplit("/", 1)[0].rsplit("/", 1)[-1] if "/" in name else ""
            yield f"file {name!r}", number, {"id": name, "image": name, "folder": folder}

    # -- planning and conversion --------------------------------------------------------------
    def _check_header(self, header: list[str], where: str) -> bool:
        ok = True
        seen: set[str] = set()
        for position, name in enumerate(header, 1):
            if not name:
                self._error(f"{where}: column {position} has no name")
                ok = False
            elif name in seen:
                self._error(f"{where}: column {name!r} appears twice")
                ok = False
            seen.add(name)
        return ok

    def _plan(self, columns: list[str]) -> ColumnPlan | None:
        plan = ColumnPlan()
        missing = [c for c in [self.requested_id_column, self.requested_text_column, self.requested_label_column,
                               self.requested_embedding_column, *(self.requested_features or [])]
                   if c and c not in columns]
        if missing:
            self._error(f"column {', '.join(map(repr, missing))} not in the file; "
                        f"it has {', '.join(map(repr, columns))}")
            return None
        plan.label_column = self.requested_label_column
        plan.id_column = self.requested_id_column or ("id" if "id" in columns and plan.label_column != "id" else None)
        if self.kind == "text":
            plan.text_column = self.requested_text_column or ("text" if "text" in columns else None)
            if plan.text_column is None:
                self._error("no text column: name it 'text' or choose one of "
                            + ", ".join(map(repr, columns)))
                return None
        elif self.kind == "image":
            plan.image_column = self.requested_text_column or next(
                (c for c in columns if c.strip().lower() in IMAGE_LIKE and c != plan.label_column), None)
            if plan.image_column is None:
                self._error("no image column: name it 'image' or choose one of " + ", ".join(map(repr, columns)))
                return None
        else:
            plan.feature_columns = self.requested_features or []
            self._auto_features = self.requested_features is None
        plan.embedding_column = self.requested_embedding_column or next(
            (c for c in columns if EMBEDDING_LIKE.fullmatch(c.strip()) and c != plan.label_column), None)
        if self.embeddings_wanted and plan.embedding_column is None:
            self._error(f"this project's items have embeddings ({self.embedding_dim} numbers each) and the model "
                        "learns from them, so every item needs one: this file has no embedding column (name it "
                        "'embedding')")
            return None
        if self.embeddings_wanted is False and plan.embedding_column is not None:
            self._error(f"column {plan.embedding_column!r} holds embeddings, but this project's items have none (its "
                        "first file brought none), so the model could not learn from them; leave the column out or "
                        "rename it, or import the pool into a new project")
            return None
        if plan.label_column is not None:
            roles = {"id": [plan.id_column], "text": [plan.text_column], "image": [plan.image_column],
                     "embedding": [plan.embedding_column], "feature": plan.feature_columns}
            clash = next((role for role, named in roles.items() if plan.label_column in named), None)
            if clash:
                self._error(f"column {plan.label_column!r} cannot be both the label column and the {clash} column")
                return None
        if "label" in columns and set(EXPORT_BOOKKEEPING) <= set(columns):
            plan.left_out = plan.unclaimed(EXPORT_BOOKKEEPING)
        plan.meta_columns = plan.unclaimed(columns)
        return plan

    def _to_item(self, where: str, line: int, record: dict[str, Any]) -> ParsedItem | None:
        plan = self.plan
        assert plan is not None
        problems_before = len(self.errors)
        external_id = None
        image = None  # image projects: the row's checked picture
        if plan.id_column is not None:
            external_id = _as_text(record.get(plan.id_column))
            if not external_id:
                self._error(f"{where}, column {plan.id_column!r}: the id is empty")
            elif "\x00" in external_id:
                self._error(f"{where}, column {plan.id_column!r}: the id holds a NUL character (byte 0x00)")
            elif len(external_id) > 200:
                self._error(f"{where}, column {plan.id_column!r}: the id is longer than 200 characters")
            elif external_id in self._seen_ids:
                self._error(f"{where}, column {plan.id_column!r}: id {external_id!r} already used "
                            f"on {self._seen_ids[external_id]}")
            else:
                self._seen_ids[external_id] = where
        if self.kind == "text":
            text = record.get(plan.text_column)
            if isinstance(text, str) and len(text) > MAX_FIELD_BYTES:
                self._error(f"{where}, column {plan.text_column!r}: the text is longer than "
                            f"{MAX_FIELD_BYTES:,} characters")
                payload = {}
            elif not isinstance(text, str) or not text.strip():
                self._error(f"{where}, column {plan.text_column!r}: the text is empty"
                            if text in (None, "") or isinstance(text, str)
                            else f"{where}, column {plan.text_column!r}: expected text, "
                                 f"found {type(text).__name__}")
                payload = {}
            else:
                payload = {"text": text}
        elif self.kind == "image":
            image = self._picture(where, record)
            payload = {} if image is None else {"image": image.digest, "width": image.width, "height": image.height,
                                                "features": image.pixels}
        else:
            if self._auto_features:
                self._choose_features(record)
            values = _fast_numbers(record, plan.feature_columns)
            if values is None:  # something is off in this row: find which cell, and say why
                values = []
                for column in plan.feature_columns:
                    value = _as_number(record.get(column))
                    if isinstance(value, str):
                        self._error(f"{where}, column {column!r}: {value}")
                    values.append(value)
            payload = {"features": values}
        if plan.embedding_column is not None:
            payload["embedding"] = self._embedding(where, record.get(plan.embedding_column))
        label = self._label(where, record) if plan.label_column is not None else None
        if len(self.errors) > problems_before:
            return None
        # JSON records need not share their keys: a key first met in a later record is metadata too
        meta_columns = plan.meta_columns if self.fmt not in ("jsonl", "json") else plan.unclaimed(record)
        meta = {c: record.get(c) for c in meta_columns if record.get(c) not in (None, "")}
        for column, value in meta.items():
            if isinstance(value, str) and len(value) > MAX_FIELD_BYTES:
                self._error(f"{where}, column {column!r}: longer than {MAX_FIELD_BYTES:,} characters")
            elif isinstance(value, list | dict) and _nesting(value) > MAX_NESTING:
                self._error(f"{where}, column {column!r}: nested deeper than {MAX_NESTING} levels")
        if len(self.errors) > problems_before:
            return None
        return ParsedItem(line=line, external_id=external_id, payload=payload, meta=meta, label=label, where=where,
                          image=image)

    def _picture(self, where: str, record: dict[str, Any]) -> PoolImage | None:
        """The row's checked picture, or None after recording why there is none."""
        column = self.plan.image_column
        place = where if self._rows_are_files else f"{where}, column {column!r}"
        cell = record.get(column)
        data = self._member_bytes(cell) if self._archive is not None and isinstance(cell, str) else image_bytes(cell)
        if isinstance(data, str):
            self._error(f"{place}: {data}")
            return None
        try:
            image = read_image(data)
        except ImageProblem as exc:
            self._error(f"{place}: {exc}")
            return None
        return image

    def _member_bytes(self, name: str) -> bytes | str:
        """The bytes of the archive's file `name` (as the manifest writes it), or why there are none."""
        import zipfile

        key = member_name(name.strip())
        info = self._archive.get(key)
        self._named_members.add(key)
        if info is None:
            shown = name if len(name) <= 60 else name[:57] + "..."
            return f"{shown!r} is not a file in the .zip" if name.strip() else "the image is empty"
        if info.file_size > MAX_IMAGE_BYTES:
            return (f"{key!r} is {info.file_size / 2**20:.1f} MB, above the {MAX_IMAGE_BYTES // 2**20} MB an image "
                    "may have")
        try:
            return self._zipfile.read(info)
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as exc:
            return f"{key!r} cannot be unpacked ({exc})"

    def _embedding(self, where: str, value: Any) -> list[float]:
        column = self.plan.embedding_column
        vector = _as_vector(value)
        if isinstance(vector, str):
            self._error(f"{where}, column {column!r}: {vector}")
            return []
        if self.embedding_dim is None:
            self.embedding_dim, self._dim_from = len(vector), f"the embedding on {where}"
        elif len(vector) != self.embedding_dim:
            self._error(f"{where}, column {column!r}: the embedding has {len(vector)} numbers, where "
                        f"{self._dim_from} has {self.embedding_dim}; every embedding of a project has the same length")
        return vector

    def _label(self, where: str, record: dict[str, Any]) -> str | None:
        """The row's label: None for an empty cell, else one of the project's labels (or an error)."""
        column = self.plan.label_column
        if _not_an_answer(record):
            self.not_accepted += 1
            return None
        label, problem = cell_label(record.get(column))
        if problem:
            self._error(f"{where}, column {column!r}: {problem}")
            return None
        if label is not None and label not in self._label_set:
            shown = label if len(label) <= 40 else label[:37] + "..."
            self._error(f"{where}, column {column!r}: {shown!r} is not a label of this project; use one of "
                        + ", ".join(map(repr, self.labels)) + " (or leave the cell empty for no label)")
        return label

    def column_labels(self, column: str, limit: int) -> dict[str, int]:
        """The labels a column holds, read as an import would read them with it as the label column,
        and how many rows carry each, in the order first met; at most `limit` of them (past that the
        column is no label column, and an error says so). Problems go to `errors` as usual."""
        found: dict[str, int] = {}
        first_keys: list[str] | None = None
        in_some_row = False
        try:
            for where, _, record in self._records():
                if first_keys is None:
                    first_keys = list(record)
                if column not in record:  # (a JSON Lines row may leave out a key it has no value for)
                    continue
                in_some_row = True
                if _not_an_answer(record):
                    continue
                label, problem = cell_label(record[column])
                if problem:
                    self._error(f"{where}, column {column!r}: {problem}")
                elif label is not None:
                    found[label] = found.get(label, 0) + 1
                    if len(found) > limit:
                        self._error(f"column {column!r} holds more than {limit} different values, more than a "
                                    "project's labels: is it the label column?")
                        return found
            if self.rows_read == 0 and not self.errors:
                self._error("the file has no rows" if self.columns else "the file is empty")
            elif first_keys is not None and not in_some_row:
                self._error(f"column {column!r} is in no row of the file; its first row has "
                            + ", ".join(map(repr, first_keys)))
        except _TooManyErrors:
            if len(self.errors) >= MAX_ERRORS:
                self.errors.append(f"stopped after {MAX_ERRORS} problems")
        except _CannotGoOn:
            self.errors.append("the rest of the file could not be read past this")
        return found

    def _choose_features(self, first_record: dict) -> None:
        """Without named features, the numeric columns of the first record are the features."""
        plan = self.plan
        assert plan is not None
        self._auto_features = False
        # The label column is never a feature, even when its labels look like numbers ("0", "1").
        candidates = plan.unclaimed(self.columns, features=False)
        # A row number or a key is a number, but as a feature it only lets the model memorise rows
        # (QA: a file's row_id became a feature); a column named like the answer (label, target,
        # class, ...) would hand the model the answer (QA: a 0/1 target became a feature). Both stay
        # metadata unless named as features.
        plan.feature_columns = [c for c in candidates if isinstance(_as_number(first_record.get(c)), float)
                                and not ID_LIKE.fullmatch(c.strip()) and not ANSWER_LIKE.fullmatch(c.strip())]
        plan.meta_columns = [c for c in candidates if c not in plan.feature_columns]
        if not plan.feature_columns:
            self._error("no numeric feature columns found in the first row; name the feature columns")
            raise _TooManyErrors  # nothing more can be read: stop here

    def _error(self, message: str) -> None:
        self.errors.append(message)
        if len(self.errors) >= MAX_ERRORS:
            raise _TooManyErrors


# Keys every Prodigy example carries: its `answer` then means accept / reject / ignore
PRODIGY_KEYS = frozenset({"_input_hash", "_task_hash"})


def _not_an_answer(record: dict) -> bool:
    """A Prodigy answer "reject" (the label is wrong) or "ignore" (says nothing): neither is a label."""
    return record.get("answer") in ("reject", "ignore") and bool(PRODIGY_KEYS & record.keys())


def cell_label(value: Any) -> tuple[str | None, str | None]:
    """(label, problem) of a label column's cell: (None, None) when it is empty."""
    if isinstance(value, list) and len(value) <= 1 and all(isinstance(v, str) for v in value):
        value = value[0] if value else None  # a choice answer's `accept` list (Prodigy), one label chosen
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None, None  # a missing value in JSONL or Parquet: unlabelled, like an empty CSV cell
    if isinstance(value, list):
        return None, f"{len(value)} labels given; an item takes one label here"
    if isinstance(value, dict):
        return None, f"expected a label, found {type(value).__name__}"
    return _as_text(value) or None, None


def _label_studio_task(record: dict) -> dict:
    """A task of Label Studio's JSON export as a flat row: its `data` fields are the columns (`id`
    the task's unless the data has one), and its first annotation not cancelled gives column `label`
    when it is one choice (a classification). Any other record is returned as it is."""
    data, annotations = record.get("data"), record.get("annotations")
    if not isinstance(data, dict) or not isinstance(annotations, list):
        return record
    row = {**({"id": record["id"]} if "id" in record and "id" not in data else {}), **data}
    for annotation in annotations:
        if not isinstance(annotation, dict) or annotation.get("was_cancelled"):
            continue
        choices = [choice for result in annotation.get("result") or [] if isinstance(result, dict)
                   for choice in ((result.get("value") or {}).get("choices") or [])]
        row.setdefault("label", choices if len(choices) != 1 else choices[0])
        break
    return row


# Files a packer or a file manager adds beside the pictures, passed over like README and LICENSE
NOT_DATA = frozenset({"thumbs.db", "desktop.ini"})


def member_name(name: str) -> str:
    """A .zip member's name as an item's id: forward slashes (some Windows packers write backslashes),
    without a leading "./" or "/" (archives packed from inside their folder, or with absolute paths)."""
    name = name.replace("\\", "/")
    while name.startswith(("./", "/")):
        name = name[2:] if name.startswith("./") else name[1:]
    return name


def _table_format(name: str) -> str | None:
    try:
        fmt = detect_format(name)
    except UploadError:
        return None
    return fmt if fmt in TABLE_FORMATS else None


MAX_EMBEDDING_DIM = 16_384


def _as_vector(value: Any) -> list[float] | str:
    """An embedding cell as a list of finite floats (a JSON or Parquet list, or text "[0.1, 0.2]" or
    "0.1 0.2" in a CSV), or a sentence saying why it is not one."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return "the embedding is empty"
        try:
            value = json.loads(text) if text.startswith("[") else [float(v) for v in re.split(r"[\s,;]+", text) if v]
        except (ValueError, RecursionError):
            return "not a list of numbers (write it as [0.12, -0.5, ...])"
    if value is None:
        return "the embedding is empty"
    if not isinstance(value, list | tuple):
        return f"expected a list of numbers, found {type(value).__name__}"
    if not value:
        return "the embedding is empty"
    if len(value) > MAX_EMBEDDING_DIM:
        return f"the embedding has {len(value):,} numbers, above the {MAX_EMBEDDING_DIM:,} an embedding may have"
    numbers = []
    for position, number in enumerate(value, 1):
        if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
            return f"number {position} of the embedding is {number!r}, not a finite number"
        numbers.append(float(number))
    return numbers


def _unguarded(cell: str) -> str:
    return cell[1:] if cell[:1] == "'" and cell[1:2] and cell[1:2] in FORMULA_START else cell


def _decoded_nbytes(column) -> int:
    """Bytes an Arrow column takes once its dictionary encoding is undone (what Python will hold)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(column.type) and (pa.types.is_string(column.type.value_type)
                                                or pa.types.is_binary(column.type.value_type)
                                                or pa.types.is_large_string(column.type.value_type)):
        lengths = pc.take(pc.binary_length(column.dictionary), column.indices)
        return int(pc.sum(lengths).as_py() or 0) + 8 * len(column)
    return column.nbytes


def _nesting(value: Any) -> int:
    """How deep lists and objects nest in a JSON value (without recursing, so any depth is safe)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, list | dict):
            deepest = max(deepest, depth)
            if depth <= MAX_NESTING:  # deeper than the limit is all there is to know
                stack.extend((child, depth + 1) for child in (current.values() if isinstance(current, dict)
                                                               else current))
    return deepest


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _fast_numbers(record: dict[str, Any], columns: list[str]) -> list[float] | None:
    """The row's features when every cell is a plain finite number, else None (then `_as_number`
    judges cell by cell). A million-row import converts twenty million cells: this is its hot loop."""
    try:
        values = [float(record[column]) for column in columns]
        # float() takes "nan" and "inf" too: a non-finite cell makes the sum non-finite (fsum raises
        # OverflowError when only the sum of finite cells overflows; the slow path accepts those).
        finite = math.isfinite(math.fsum(values))
    except (KeyError, TypeError, ValueError, OverflowError):
        return None
    return values if finite else None


def _as_number(value: Any) -> float | str:
    """The value as a finite float, or a sentence saying why it is not one."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return "the value is empty"
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            shown = value if len(value) <= 40 else value[:37] + "..."
            return f"{shown!r} is not a number"
    else:
        return f"expected a number, found {type(value).__name__}"
    if not math.isfinite(number):
        return f"{value!r} is not a finite number (NaN and infinity cannot be features)"
    return number


def parse_all(data: bytes | Iterable[bytes], **kwargs) -> tuple[list[ParsedItem], PoolParser]:
    """Parse a whole file held in memory (tests, small files); raise UploadError on problems."""
    fileobj = io.BytesIO(data if isinstance(data, bytes) else b"".join(data))
    parser = PoolParser(fileobj, **kwargs)
    items = list(parser)
    if parser.errors:
        raise UploadError(parser.errors)
    return items, parser
