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
FORMATS = ("csv", "tsv", "txt", "jsonl", "json", "parquet")


class UploadError(ValueError):
    """The file cannot be imported; `errors` holds one sentence per problem."""

    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


class _TooManyErrors(Exception):
    pass


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


# Column names that say "a key or a row number" (pandas writes its index as "Unnamed: 0")
ID_LIKE = re.compile(r"(?i)(row[ _]?(id|no|num|number)|index|idx|unnamed: ?\d+|\w*[_ ]id|id[_ ]\w*)")


# Column names that say "the answer": never guessed to be features
ANSWER_LIKE = re.compile(r"(?i)(labels?|target|class|gold|answer|category|outcome|truth|ground[ _]truth|y_true)")


@dataclass
class ColumnPlan:
    """Which columns of the file play which part; decided from the header or first record."""

    id_column: str | None = None
    text_column: str | None = None
    label_column: str | None = None
    feature_columns: list[str] = field(default_factory=list)
    meta_columns: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # an export's bookkeeping (EXPORT_BOOKKEEPING)

    def unclaimed(self, columns, *, features: bool = True) -> list[str]:
        """`columns` that no role takes (metadata, or candidate features with `features=False`)."""
        taken = {self.id_column, self.text_column, self.label_column, *self.left_out,
                 *(self.feature_columns if features else ())}
        return [c for c in columns if c not in taken]


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
    if name.endswith(".csv") or not name:
        return "csv"
    raise UploadError([f"cannot tell the format of {filename!r}: name it .csv, .tsv, .txt, .jsonl, .json or "
                       ".parquet"])


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
    ):
        """`label_column` names the column of pre-annotated labels; its values must be among `labels`
        (the project's), and an empty cell leaves the item unlabelled. `max_decoded_bytes` bounds
        what a compressed (Parquet) file may expand to, so a small file cannot fill memory and disk."""
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

    # -- public -------------------------------------------------------------------------
    def __iter__(self) -> Iterator[ParsedItem]:
        try:
            records = {"csv": self._csv_records, "tsv": self._csv_records, "txt": self._txt_records,
                       "jsonl": self._jsonl_records, "json": self._json_records,
                       "parquet": self._parquet_records}[self.fmt]()
            for where, line, record in records:
                self.rows_read += 1
                if self.fmt in ("jsonl", "json"):
                    record = _label_studio_task(record)
                    if self.plan is None:
                        self.columns = list(record)
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
            self.errors.append(f"stopped after {MAX_ERRORS} problems; fix these and upload again")
        except _CannotGoOn:
            self.errors.append("the rest of the file could not be read past this; fix it and upload again")

    # -- readers: yield (where, line number, record dict) -------------------------------------
    def _decoded_lines(self) -> Iterator[str]:
        for lineno, raw in enumerate(self.fileobj, 1):
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            elif lineno == 1 and (raw.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in raw):
                self._error("the file is UTF-16 (it starts with a UTF-16 byte order mark, or its first line has NUL "
                            "bytes between its letters); save it as UTF-8")
                raise _CannotGoOn
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
                               *(self.requested_features or [])] if c and c not in columns]
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
        else:
            plan.feature_columns = self.requested_features or []
            self._auto_features = self.requested_features is None
        if plan.label_column is not None:
            roles = {"id": [plan.id_column], "text": [plan.text_column], "feature": plan.feature_columns}
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
        if plan.id_column is not None:
            external_id = _as_text(record.get(plan.id_column))
            if not external_id:
                self._error(f"{where}, column {plan.id_column!r}: the id is empty")
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
        return ParsedItem(line=line, external_id=external_id, payload=payload, meta=meta, label=label, where=where)

    def _label(self, where: str, record: dict[str, Any]) -> str | None:
        """The row's label: None for an empty cell, else one of the project's labels (or an error)."""
        column = self.plan.label_column
        value = record.get(column)
        if record.get("answer") in ("reject", "ignore") and PRODIGY_KEYS & record.keys():
            # a Prodigy answer: "reject" says the label is wrong, "ignore" says nothing; neither is a label
            self.not_accepted += 1
            return None
        if isinstance(value, list) and len(value) <= 1 and all(isinstance(v, str) for v in value):
            value = value[0] if value else None  # a choice answer's `accept` list (Prodigy), one label chosen
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None  # a missing value in JSONL or Parquet: unlabelled, like an empty CSV cell
        if isinstance(value, list):
            self._error(f"{where}, column {column!r}: {len(value)} labels given; an item takes one label here")
            return None
        if isinstance(value, dict):
            self._error(f"{where}, column {column!r}: expected a label, found {type(value).__name__}")
            return None
        label = _as_text(value)
        if not label:
            return None
        if label not in self._label_set:
            shown = label if len(label) <= 40 else label[:37] + "..."
            self._error(f"{where}, column {column!r}: {shown!r} is not a label of this project; use one of "
                        + ", ".join(map(repr, self.labels)) + " (or leave the cell empty for no label)")
        return label

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
            raise _TooManyErrors

    def _error(self, message: str) -> None:
        self.errors.append(message)
        if len(self.errors) >= MAX_ERRORS:
            raise _TooManyErrors


# Keys every Prodigy example carries: its `answer` then means accept / reject / ignore
PRODIGY_KEYS = frozenset({"_input_hash", "_task_hash"})


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
