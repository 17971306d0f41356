"""All tables, imported here so Alembic and the app see one metadata."""

from app.models._common import utcnow
from app.models.annotation import Annotation, ServeSource
from app.models.browser_session import BrowserSession
from app.models.coverage import CoverageEntry
from app.models.image import PoolImageRow
from app.models.item import Item, ItemState
from app.models.job import Job, JobStatus
from app.models.lease import Lease
from app.models.login_failure import LoginFailure
from app.models.membership import ProjectMember
from app.models.model_version import ModelVersion, RankingEntry
from app.models.project import Project, ProjectKind
from app.models.quality import ItemQuality, LabelReview, QualityReport
from app.models.simulation import Simulation
from app.models.user import ApiToken, Role, User

__all__ = [
    "Annotation",
    "ApiToken",
    "BrowserSession",
    "CoverageEntry",
    "Item",
    "ItemQuality",
    "ItemState",
    "Job",
    "JobStatus",
    "LabelReview",
    "Lease",
    "LoginFailure",
    "ModelVersion",
    "PoolImageRow",
    "Project",
    "ProjectKind",
    "ProjectMember",
    "QualityReport",
    "RankingEntry",
    "Role",
    "ServeSource",
    "Simulation",
    "User",
    "utcnow",
]
