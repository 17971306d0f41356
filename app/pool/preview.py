"""What an upload would import, shown before it does: the first rows and the part each column plays.

The browser sends the head of the file only, and the preview reads it with the same parser as the
import, on the same settings, stopping after a few rows. A Parquet file keeps its schema at its end,
so its head says nothing: it gets no preview.
"""

import io
from dataclasses import dataclass, field

from app.models import Project
from app.pool.images import preview_thumbnail
from app.pool.parsing import PoolParser, UploadError, cell_label, detect_format

PREVIEW_ROWS = 10
# The browser's slice of a large file (static/js/app.js sends this much)
HEAD_BYTES = 128 * 1024
# A Parquet file is previewed whole (its columns are described at its end) when it is this small:
# under the limit of a request that is not an upload (app.config max_body_bytes, 1 MiB).
PARQUET_PREVIEW_BYTES = 900 * 1024


@dataclass
class Preview:
    fmt: str
    columns: list[str] = field(default_factory=list)
    # column -> "id" | "text" | "label" | "feature" | "metadata" | "left out" (an export's bookkeeping)
    roles: dict[str, str] = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)  # as the file has them, column -> value
    # image projects: each row's picture as a small PNG data URI (the page's policy allows data: images)
    thumbnails: list[str | None] = field(default_factory=list)
    image_column: str | None = None
    # metadata columns whose every filled cell in these rows is one of the project's labels: the page
    # offers to import them as labels (an admin who read the labels from a column, and did not name it)
    label_like: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    partial: bool = False  # only the head of the file was read


def preview_pool(project: Project, head: bytes, *, filename: str | None, partial: bool,
                 text_column: str | None = None, id_column: str | None = None,
                 feature_columns: list[str] | None = None, label_column: str | None = None,
                 embedding_column: str | None = None) -> Preview:
    try:
        fmt = detect_format(filename)
    except UploadError as exc:
        return Preview(fmt="", errors=exc.errors)
    if fmt in ("parquet", "zip") and partial:  # described at their end: a head is no Parquet file or .zip
        return Preview(fmt=fmt, partial=partial)
    if partial and b"\n" in head:
        head = head[:head.rindex(b"\n") + 1]  # a cut line is no row
    if project.kind == "tabular" and project.feature_names and not feature_columns:
        feature_columns = project.feature_names
    parser = PoolParser(io.BytesIO(head), kind=project.kind, fmt=fmt, text_column=text_column, id_column=id_column,
                        feature_columns=feature_columns, label_column=label_column, labels=project.labels,
                        embedding_column=embedding_column, embedding_dim=project.embedding_dim)
    preview = Preview(fmt=fmt, partial=partial)
    records = []
    # the parser's items carry the values it will store; the preview shows the file's own cells
    for item in parser:
        records.append(item)
        if len(records) >= PREVIEW_ROWS:
            break
    plan = parser.plan
    preview.columns = list(parser.columns)
    preview.image_column = plan.image_column if plan is not None else None
    if plan is not None:
        for column in preview.columns:
            preview.roles[column] = ("id" if column == plan.id_column else "text" if column == plan.text_column
                                     else "image" if column == plan.image_column
                                     else "embedding" if column == plan.embedding_column
                                     else "label" if column == plan.label_column
                                     else "feature" if column in plan.feature_columns
                                     else "left out" if column in plan.left_out else "metadata")
    if plan is not None and plan.label_column is None:
        preview.label_like = [column for column in preview.columns if preview.roles.get(column) == "metadata"
                              and _only_labels(project, [item.meta.get(column) for item in records])]
    for item in records:
        row = dict(item.meta)
        if plan is not None and plan.id_column:
            row[plan.id_column] = item.external_id
        if "text" in item.payload:
            row[plan.text_column] = item.payload["text"]
        if item.image is not None:
            row[plan.image_column] = f"{item.image.media_type.split('/')[1].upper()} {item.image.width} x " \
                                     f"{item.image.height}"
        preview.thumbnails.append(preview_thumbnail(item.image) if item.image is not None else None)
        if plan is not None and plan.embedding_column:
            row[plan.embedding_column] = f"{len(item.payload.get('embedding', []))} numbers"
        for name, value in zip(plan.feature_columns if plan else [], item.payload.get("features", []) if
                               item.image is None else [], strict=False):
            row[name] = value
        if plan is not None and plan.label_column:
            row[plan.label_column] = item.label or ""
        preview.rows.append(row)
    # A cut at the end of the head can leave an open quote or a broken-off array; the import reads
    # the whole file and will say if it really is broken.
    lost = parser.lost_track_at
    preview.errors = parser.errors[:lost] if partial and lost is not None else list(parser.errors)
    return preview


def _only_labels(project: Project, cells: list) -> bool:
    """Whether the cells are labels of the project, read as the import would, with at least one filled."""
    labels = [cell_label(cell) for cell in cells]
    filled = [label for label, problem in labels if label is not None or problem]
    return bool(filled) and all(label in project.labels for label in filled)
