"""Request and response shapes for projects."""

import unicodedata
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.al import STRATEGIES
from app.incoming import Incoming


def _clean_name(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("the name is empty")
    return value


def _known_strategy(value: str) -> str:
    if value not in STRATEGIES:
        raise ValueError(f"unknown strategy {value!r}; choose one of {', '.join(sorted(STRATEGIES))}")
    return value


def clean_labels(labels: list[str]) -> list[str]:
    cleaned = [label.strip() for label in labels]
    if any(not label for label in cleaned):
        raise ValueError("a label is empty")
    if any(len(label) > 200 for label in cleaned):
        raise ValueError("a label is longer than 200 characters")
    duplicates = sorted({label for label in cleaned if cleaned.count(label) > 1})
    if duplicates:
        raise ValueError(f"labels repeat: {', '.join(duplicates)}")
    # Two buttons that differ only in case look alike on the card, and a file's label column,
    # matched exactly, would split its answers between them: almost always one label typed twice.
    # So do two spellings of one letter ("é" as one character, or as "e" and an accent): NFKC.
    folded: dict[str, list[str]] = {}
    for label in cleaned:
        folded.setdefault(unicodedata.normalize("NFKC", label).casefold(), []).append(label)
    groups = [group for group in folded.values() if len(group) > 1]
    if groups:
        encoded = any(len({label.casefold() for label in group}) > 1 for group in groups)
        raise ValueError(f"labels differ only in case{' or in how a letter is encoded' if encoded else ''}: "
                         f"{'; '.join(' and '.join(group) for group in groups)}; keep one of each")
    return cleaned


class ProjectCreate(Incoming):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    kind: Literal["text", "tabular", "image"]
    labels: list[str] = Field(min_length=2, max_length=100)
    strategy: str = "auto"
    strategy_params: dict = Field(default_factory=dict)
    batch_size: int = Field(default=10, ge=1, le=10_000)
    annotations_per_item: int = Field(default=1, ge=1, le=20)
    holdout_fraction: float = Field(default=0.1, ge=0.0, le=0.5,
                                    description="share of the pool kept aside, served at random, never trained on")
    description: str = Field(default="", max_length=5000)
    show_model_guess: bool = Field(default=False, description="a faint hint of the model's guess on ranked cards")
    members: list[str] = Field(default_factory=list, max_length=1000,
                               description="usernames of the leads and annotators who may work on it")

    _name = field_validator("name")(classmethod(lambda cls, value: _clean_name(value)))

    _labels = field_validator("labels")(classmethod(lambda cls, value: clean_labels(value)))
    _strategy = field_validator("strategy")(classmethod(lambda cls, value: _known_strategy(value)))


class LabelsUpdate(Incoming):
    """A project's new label list, in the order of their keys. A label of before that is not in it is
    removed (only if nobody gave it) unless `renames` maps it to its new name; a rename onto a label
    that stays merges the two."""

    model_config = ConfigDict(extra="forbid")

    labels: list[str] = Field(min_length=2, max_length=100)
    renames: dict[str, str] = Field(default_factory=dict, description="old name -> new name")

    _labels = field_validator("labels")(classmethod(lambda cls, value: clean_labels(value)))
    _renames = field_validator("renames")(classmethod(
        lambda cls, value: {old.strip(): new.strip() for old, new in value.items()}))


class ProjectUpdate(Incoming):
    """What an admin may change once a project exists; a field left out stays as it is. The kind is
    fixed; the labels change through LabelsUpdate."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    strategy: str | None = None
    strategy_params: dict | None = None
    batch_size: int | None = Field(default=None, ge=1, le=10_000)
    annotations_per_item: int | None = Field(default=None, ge=1, le=20)
    holdout_fraction: float | None = Field(default=None, ge=0.0, le=0.5,
                                           description="for items imported from now on")
    show_model_guess: bool | None = Field(default=None, description="from the next retrain on")

    _name = field_validator("name")(classmethod(lambda cls, value: None if value is None else _clean_name(value)))
    _strategy = field_validator("strategy")(classmethod(
        lambda cls, value: None if value is None else _known_strategy(value)))


class ProjectRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str
    kind: str
    labels: list[str]
    strategy: str
    strategy_params: dict
    batch_size: int
    annotations_per_item: int
    holdout_fraction: float
    show_model_guess: bool
    feature_names: list[str] | None
    embedding_dim: int | None = Field(None, description="the length of the items' own embeddings, which the "
                                                        "model learns from; null when they have none")
    created_at: datetime


class ProjectSummary(ProjectRead):
    n_items: int
    n_done: int = Field(description="items with every opinion they ask for")
    n_done_tied: int = Field(description="of those, items whose answers tie: no label until a lead decides")
    n_training_labels: int
    current_model_version: int | None
