"""Who may work on which project: admins on all, leads and annotators on those they are members of."""

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.models import ProjectMember, Role, User


def is_member(session: Session, *, user: User, project_id: int) -> bool:
    if user.role == Role.admin:
        return True
    return session.get(ProjectMember, (project_id, user.id)) is not None


def visible_project_ids(session: Session, *, user: User) -> list[int] | None:
    """The projects `user` may see; None means all (admins)."""
    if user.role == Role.admin:
        return None
    return list(session.scalars(select(ProjectMember.project_id).where(ProjectMember.user_id == user.id)))


def add_member(session: Session, *, project_id: int, user: User) -> None:
    if session.get(ProjectMember, (project_id, user.id)) is None:
        session.add(ProjectMember(project_id=project_id, user_id=user.id))
        session.flush()


def remove_member(session: Session, *, project_id: int, user_id: int) -> None:
    session.execute(delete(ProjectMember).where(ProjectMember.project_id == project_id,
                                                ProjectMember.user_id == user_id))


def members_of(session: Session, *, project_id: int) -> list[User]:
    return list(session.scalars(select(User).join(ProjectMember, ProjectMember.user_id == User.id)
                                .where(ProjectMember.project_id == project_id).order_by(User.username)))
