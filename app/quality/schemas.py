"""Shapes of the label-quality API's requests and answers."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.incoming import Incoming


class QualityItem(BaseModel):
    item_id: int
    external_id: str
    text: str | None
    features: list | None
    given_label: str = Field(description="the training label the evidence is about")
    final_label: str | None
    score: float = Field(description="1 - mean held-out probability of the given label; higher = more suspicious")
    flagged: bool = Field(description="confident learning flags the label")
    p_given: float = Field(description="out-of-fold probability of the given label")
    suggested_label: str = Field(description="the most likely other label, out of fold")
    p_suggested: float
    loo_p_given: float | None = Field(description="approximate leave-one-out probability of the given label")
    self_influence: float | None
    holdout_influence: float | None = Field(
        description="change of the summed holdout log-loss if the item were removed: > 0 helps, < 0 harms")
    holdout_loo: float | None = Field(description="the same by exact refit, once verified")
    labelled_by: list[str] = Field(description="'annotator: label' for each answer")
    decided_by_lead: bool


class ReportRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    model_version: int | None
    current_model_version: int | None
    stale: bool = Field(description="the report is about an older model than the one served")
    computing: bool = Field(description="a quality job for the newest model is queued or running")
    created_at: datetime | None
    seconds: float | None
    n_items: int
    n_holdout: int
    approx: str | None
    details: dict
    verify: dict | None
    last_error: str | None


class SuspiciousList(BaseModel):
    report: ReportRead
    items: list[QualityItem]


class InfluenceList(BaseModel):
    report: ReportRead
    verifying: bool
    helpful: list[QualityItem]
    harmful: list[QualityItem]


class ReviewCreate(Incoming):
    model_config = ConfigDict(extra="forbid")

    item_id: int = Field(ge=1, le=2**31 - 1)
    action: Literal["confirm", "relabel", "requeue"]
    label: str | None = Field(default=None, min_length=1, max_length=200,
                              description="the new label (relabel only)")


class ReviewRead(BaseModel):
    id: int
    item_id: int
    action: str
    label: str
    previous_label: str | None
    final_label: str | None = Field(description="the item's training label after the decision")
    item_state: str
    retrain_queued: bool
    created_at: datetime


class VerifyRead(BaseModel):
    job_id: int
    status: str
    model_version: int | None


class InfluenceEntry(BaseModel):
    item_id: int
    external_id: str | None
    label: str
    influence: float
    text: str | None


class ExplanationRead(BaseModel):
    available: bool
    reason: str | None = None
    model_version: int | None = None
    classes: list[str] = []
    probabilities: dict[str, float] = {}
    predicted_label: str | None = None
    explained_label: str | None = None
    explains: str | None = None
    helpful: list[InfluenceEntry] = []
    harmful: list[InfluenceEntry] = []
    n_training_labels: int | None = None
    method: str | None = None
    seconds: float | None = None
