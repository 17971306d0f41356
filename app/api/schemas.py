"""Shapes of the JSON API's answers."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.incoming import Incoming


class WhyRead(BaseModel):
    source: str = Field(description="ranking, random, cold_start, holdout, direct, "
                                    "or import (a label from the pool file)")
    strategy: str | None
    score: float | None
    model_version: int | None


class ServedItem(BaseModel):
    id: int
    external_id: str
    data: dict
    meta: dict
    why: WhyRead
    lease_expires_at: datetime


class AnnotationCreate(Incoming):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1, max_length=200)
    seconds_spent: float | None = Field(default=None, ge=0, le=86_400)


class AnnotationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    item_id: int
    project_id: int
    user_id: int
    label: str | None
    skipped: bool
    created_at: datetime
    seconds_spent: float | None
    why: WhyRead


class ImportRead(BaseModel):
    imported: int
    format: str
    id_column: str | None
    text_column: str | None
    feature_columns: list[str]
    meta_columns: list[str]
    image_column: str | None = None
    embedding_column: str | None = Field(None, description="the column of the items' own embeddings, which "
                                                           "the model learns from")
    left_out_columns: list[str] = Field(default_factory=list,
                                        description="a labelloop export's holdout, n_annotations and adjudicated "
                                                    "columns, which describe the project it came from")
    label_column: str | None = None
    labelled: int = Field(0, description="items imported with a label (training and holdout labels)")
    skipped_duplicates: int = Field(0, description="rows already in the project, left out rather than added "
                                                   "twice: without an id, the content (text, features) of an item; "
                                                   "with an id, an item's id and content")
    skipped_places: list[str] = Field(default_factory=list,
                                      description="where the first 20 of those rows are in the file")
    labels_for_existing: int = Field(0, description="labels those rows brought, added to the items they repeat "
                                                    "as the importer's answers (or changed on them)")
    labels_already_there: int = Field(0, description="labels those rows brought that their items already had "
                                                     "(from anyone's answer, or a lead's adjudication): not added "
                                                     "again")
    answers_standing: int = Field(0, description="labels those rows brought where the importer had answered "
                                                 "otherwise on a card: the card answer stands")
    conflicting_labels: int = Field(0, description="rows that gave an item another label than an earlier row "
                                                   "of the file did: the first label stands, these are left out")
    conflicting_places: list[str] = Field(default_factory=list, description="the first 20 of them, with both "
                                                                            "labels")
    not_accepted: int = Field(0, description="rows of a Prodigy file answered reject or ignore: imported "
                                             "unlabelled, since neither answer is a label")
    unnamed_images: int = Field(0, description="pictures in a .zip that its table names in no row: left out, "
                                               "no items")
    unnamed_image_names: list[str] = Field(default_factory=list, description="the first 20 of them, by path")


class ModelVersionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    created_at: datetime
    n_labels: int
    classes: list[str]
    metrics: dict
    strategy: str
    train_seconds: float
    score_seconds: float
    n_ranked: int
    is_current: bool


class JobRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str = Field(description="train (a retrain) or simulate")
    status: str
    n_labels: int
    attempts: int
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    role: str


class SimulationCreate(Incoming):
    model_config = ConfigDict(extra="forbid")

    strategies: list[str] = Field(min_length=1, max_length=30)
    repeats: int = Field(default=3, ge=1, le=10)
    budget: int = Field(default=300, ge=10, le=5000)
    initial: int = Field(default=20, ge=2, le=1000)


class SimulationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    status: str
    strategies: list[str]
    config: dict
    result: dict | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None


class MemberAdd(Incoming):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=80)
