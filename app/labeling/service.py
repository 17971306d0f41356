"""Serving items to annotators and recording their answers.

Serving is index lookups only: the worker has already ranked the pool, so the next item is the
first available row of the current ranking (or of the import-time random permutation when
there is no ranking). No model is fitted or asked here.
"""

import random
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, exists, func, select, update
from sqlalchemy.orm import Session

from app.config import get_settings
from app.errors import Conflict, InvalidInput, NotFound, quoted
from app.models import (
    Annotation,
    CoverageEntry,
    Item,
    ItemState,
    Lease,
    ModelVersion,
    Project,
    RankingEntry,
    ServeSource,
    User,
    utcnow,
)
from app.training.queue import maybe_queue_training

# Which served items go to the holdout; a module-level generator, seeded by the OS.
_coin = random.Random()

# Time on one item beyond this is a coffee break, not labelling effort.
MAX_SECONDS_SPENT = 30 * 60
SECOND_OPINION = "second opinion"  # `why` of an item a lead sent back for one more answer


@dataclass
class Why:
    source: str
    strategy: str | None = None
    score: float | None = None
    model_version: int | None = None
    # the model's guess shown on the card (when the project shows it); not part of the provenance
    guess: str | None = None
    guess_confidence: float | None = None

    @classmethod
    def of(cls, record) -> "Why":
        """The provenance a lease or an answer carries (the guess is shown, never recorded)."""
        return cls(record.source, record.strategy, record.score, record.model_version)

    def as_dict(self) -> dict:
        return {"source": self.source, "strategy": self.strategy, "score": self.score,
                "model_version": self.model_version}


@dataclass
class Served:
    item: Item
    lease: Lease

    def card_meta(self, project: Project) -> dict:
        """The item's metadata as the annotator sees it: without a field whose value is one of the
        project's labels, or a name one had before a rename (a file's gold answer or an earlier
        tool's label would show the answer the annotator is measured against)."""
        hidden = set(project.labels) | set(project.former_labels or ())
        return {key: value for key, value in (self.item.meta or {}).items()
                if not (isinstance(value, str | int | float) and str(value).strip() in hidden)}

    @property
    def why(self) -> Why:
        return Why.of(self.lease)


def _lease_expiry(now: datetime) -> datetime:
    return now + timedelta(seconds=get_settings().lease_seconds)


def _available(project: Project, user_id: int, now: datetime) -> list:
    """Conditions for an item this user may be served now."""
    answered_by_me = exists().where(Annotation.item_id == Item.id, Annotation.user_id == user_id)
    conditions = [Item.project_id == project.id, Item.state == ItemState.open, ~answered_by_me]
    if project.annotations_per_item == 1:
        conditions.append(~exists().where(Lease.item_id == Item.id, Lease.user_id != user_id,
                                          Lease.expires_at > now))
    else:
        others_holding = (select(func.count()).select_from(Lease)
                          .where(Lease.item_id == Item.id, Lease.user_id != user_id, Lease.expires_at > now)
                          .scalar_subquery())
        conditions.append(Item.n_annotations + others_holding < project.annotations_per_item + Item.extra_annotations)
    return conditions


def claim_lock(stmt, dialect_name: str):
    """The item-claim select `stmt` with the row lock this database needs."""
    # PostgreSQL: concurrent annotators skip rows another transaction is claiming.
    # SQLite: the write transaction (BEGIN IMMEDIATE) already serialises claims.
    if dialect_name == "postgresql":
        # FOR NO KEY UPDATE: the worker's ranking inserts take KEY SHARE locks on the items they
        # reference; a plain FOR UPDATE would skip (or wait for) every item in a ranking being written.
        return stmt.with_for_update(of=Item, skip_locked=True, key_share=True)
    return stmt


def _lock(stmt, session: Session):
    return claim_lock(stmt, session.get_bind().dialect.name)


def current_model(session: Session, project: Project) -> ModelVersion | None:
    if project.current_model_version_id is None:
        return None
    return session.get(ModelVersion, project.current_model_version_id)


def _ranked_by(model: ModelVersion, item_id: int) -> str:
    """The strategy that put this item where it is: for `auto`, the arm the bandit drew, or its
    random share (the uniform draws that keep the bandit's reward estimates honest). A ranking that
    starts with a cover batch says `:cover` for that batch only: the items after it are in the
    strategy's own order (for auto, the drawn arm's) and say that."""
    metrics = model.metrics or {}
    choice = metrics.get("strategy_choice") or {}
    base = model.strategy.split(":")[0]
    if item_id in choice.get("random_ids", ()):
        return f"{base}:random share"
    cover_ids = (metrics.get("cover") or {}).get("ids")
    if cover_ids and item_id not in cover_ids:
        return f"{base}:{choice['ranked_by']}" if choice.get("ranked_by") else base
    return model.strategy


def _labelled_classes(session: Session, project: Project) -> int:
    return session.scalar(
        select(func.count(func.distinct(Item.final_label)))
        .where(Item.project_id == project.id, Item.final_label.is_not(None), Item.is_holdout.is_(False))
    ) or 0


def _choose(session: Session, project: Project, user: User, now: datetime) -> tuple[Item, Why] | None:
    """The next item for `user`, row-locked on PostgreSQL and re-checked once the lock is held.

    Under READ COMMITTED a claim's SELECT ... FOR UPDATE judges the lease condition on the snapshot
    its statement started with. If another claim on the same row commits in between, the row itself
    is unchanged (that claim only inserted a lease), so the lock is granted on a stale verdict. A
    fresh statement after the lock sees that lease, and the item is passed over.
    """
    passed_over: list[int] = []
    while True:
        chosen = _choose_unchecked(session, project, user, now, passed_over)
        if chosen is None or session.get_bind().dialect.name != "postgresql":
            return chosen
        item = chosen[0]
        if _is_available(session, project, user, item, now):
            return chosen
        passed_over.append(item.id)


def _choose_unchecked(session: Session, project: Project, user: User, now: datetime,
                      passed_over: list[int]) -> tuple[Item, Why] | None:
    conditions = _available(project, user.id, now)
    if passed_over:
        conditions.append(Item.id.not_in(passed_over))
    model = current_model(session, project)
    version = model.version if model is not None else None
    if project.holdout_fraction > 0 and _coin.random() < project.holdout_fraction:
        item = _first_in_shuffle_order(session, conditions + [Item.is_holdout.is_(True)])
        if item is not None:
            return item, Why(ServeSource.holdout, "random", None, version)
    conditions.append(Item.is_holdout.is_(False))
    # No model yet: the coverage order (once a model exists, its ranking starts with a cover batch
    # while some label has too few examples, app/al/cold_start.cover_first)
    if project.strategy != "random" and model is None:
        item = session.scalars(_lock(
            select(Item).join(CoverageEntry, CoverageEntry.item_id == Item.id)
            .where(CoverageEntry.project_id == project.id, *conditions)
            .order_by(CoverageEntry.position).limit(1), session)).first()
        if item is not None:
            return item, Why(ServeSource.cold_start, "coverage", None, version)
    if model is not None and project.strategy != "random":
        row = session.execute(_lock(
            select(Item, RankingEntry.score, RankingEntry.guess, RankingEntry.guess_confidence, RankingEntry.rank)
            .join(RankingEntry, RankingEntry.item_id == Item.id)
            .where(RankingEntry.model_version_id == model.id, *conditions)
            .order_by(RankingEntry.rank)
            .limit(1), session)).first()
        if row is not None:
            item, score, guess, confidence, rank = row
            if rank < 0:  # pinned at the head by a lead's request (pin_second_opinions), not by the strategy
                return item, Why(ServeSource.ranking, SECOND_OPINION, None, model.version)
            shown = project.show_model_guess and guess is not None and guess < len(model.classes)
            return item, Why(ServeSource.ranking, _ranked_by(model, item.id), float(score), model.version,
                             guess=model.classes[guess] if shown else None,
                             guess_confidence=confidence if shown else None)
    item = _first_in_shuffle_order(session, conditions)
    if item is None:
        # Only holdout items are left: serve them as such, so the pool can be finished.
        item = _first_in_shuffle_order(session, conditions[:-1] + [Item.is_holdout.is_(True)])
        return (item, Why(ServeSource.holdout, "random", None, version)) if item is not None else None
    if model is not None:
        return item, Why(ServeSource.random, "random", None, model.version)
    if _labelled_classes(session, project) < 2:
        return item, Why(ServeSource.cold_start, "random")
    return item, Why(ServeSource.random, "random")


def _first_in_shuffle_order(session: Session, conditions: list) -> Item | None:
    return session.scalars(_lock(select(Item).where(*conditions).order_by(Item.shuffle_key).limit(1),
                                 session)).first()


def _hold(session: Session, *, project: Project, item: Item, user: User, why: Why, now: datetime) -> Lease:
    """Lease `item` to `user` (refreshing a lease they had). Others' expired leases on it stay until
    the worker clears them a week later (EXPIRED_LEASES_KEPT): an answer sent on such a card is still
    kept (`_record`)."""
    lease = session.scalar(select(Lease).where(Lease.item_id == item.id, Lease.user_id == user.id))
    if lease is None:
        lease = Lease(project_id=project.id, item_id=item.id, user_id=user.id)
        session.add(lease)
    lease.served_at, lease.paused_at = now, None
    lease.expires_at = _lease_expiry(now)
    lease.source, lease.strategy, lease.score, lease.model_version = (
        why.source, why.strategy, why.score, why.model_version)
    lease.guess, lease.guess_confidence = why.guess, why.guess_confidence
    session.flush()
    return lease


def next_item(session: Session, *, project: Project, user: User, now: datetime | None = None) -> Served | None:
    """The item this user should label now, leased to them; None when nothing is left for them.

    An item the user already holds comes back first, so a reload or a reconnect shows the same card.
    """
    now = now or utcnow()
    answered_by_me = exists().where(Annotation.item_id == Item.id, Annotation.user_id == user.id)
    # (one statement for both: a card let go within RETURN_WINDOW comes after every live one)
    live = Lease.expires_at > now
    held = session.execute(
        select(Item, Lease).join(Lease, Lease.item_id == Item.id)
        .where(Lease.user_id == user.id, Lease.project_id == project.id, Lease.expires_at > now - RETURN_WINDOW,
               Item.state == ItemState.open, ~answered_by_me)
        # the card on screen first; then the one put aside last (an undo puts the card it leaves
        # aside, and the undone card's served_at is moved back by its first look, so served_at alone
        # does not tell which is newer); then the card let go last
        .order_by(case((live, 0), else_=1), case((Lease.paused_at.is_(None), 0), else_=1),
                  Lease.paused_at.desc(), Lease.served_at.desc())
        .limit(1)).first()
    if held is not None and held[1].expires_at > now:
        item, lease = held
        if lease.paused_at is not None:  # back from an undo: the detour was not time on this card
            lease.served_at += max(now - lease.paused_at, timedelta(0))
            lease.paused_at = None
        lease.expires_at = _lease_expiry(now)
        return Served(item, lease)
    if held is not None and _still_free(session, project, user, held[0], now):
        item, lease = held  # let go as its page went away, and no one took it since: the same card
        lease.served_at, lease.paused_at, lease.expires_at = now, None, _lease_expiry(now)
        return Served(item, lease)
    chosen = _choose(session, project, user, now)
    if chosen is None:
        return None
    item, why = chosen
    return Served(item, _hold(session, project=project, item=item, user=user, why=why, now=now))


# A card let go as its page went away comes back to the same user within this long, if no one took
# it meanwhile: the page going away was a reload, or a step to another page and back.
RETURN_WINDOW = timedelta(seconds=60)


def _still_free(session: Session, project: Project, user: User, item: Item, now: datetime) -> bool:
    """Whether `item` may be served to `user` now, judged under its row lock on PostgreSQL (another
    claim may have taken it since this transaction's snapshot: see `_choose`)."""
    if session.get_bind().dialect.name == "postgresql":
        locked = session.scalars(_lock(select(Item).where(Item.id == item.id), session)).first()
        if locked is None:  # a claim holds the row this moment: it is taking the item
            return False
    return _is_available(session, project, user, item, now)


def _is_available(session: Session, project: Project, user: User, item: Item, now: datetime) -> bool:
    """`_available` asked of one item in a fresh statement (on PostgreSQL it sees claims committed
    since the transaction's snapshot)."""
    return session.scalar(select(Item.id).where(Item.id == item.id, *_available(project, user.id, now))) is not None


# How far a card's expiry that a page sends back may be from the stored one and still name it (its
# round trip through the page and the database keeps the microsecond).
_SAME_INSTANT = timedelta(milliseconds=1)


def release_cards(session: Session, *, project: Project, user: User, held_until: datetime | None = None,
                  now: datetime | None = None) -> int:
    """The user left the label page (closed the tab, went elsewhere): the cards they hold in the
    project go back to the pool now, not when their leases run out, so no one waits ten minutes for
    an item nobody is looking at. Returns how many were let go.

    `held_until` is the expiry the page showed on its card. A card served again since (the same
    page reloaded, another tab) carries a later expiry and is kept: the tab that left must not take
    the card from the one that came. An expired lease stays a lease, so an answer sent on the card
    later (the page restored from the browser's cache) is still kept (`_record`)."""
    now = now or utcnow()
    conditions = [Lease.user_id == user.id, Lease.project_id == project.id, Lease.expires_at > now]
    if held_until is not None:
        conditions.append(Lease.expires_at <= held_until + _SAME_INSTANT)
    return session.execute(update(Lease).where(*conditions).values(expires_at=now)
                           .execution_options(synchronize_session=False)).rowcount or 0


def _locked_item(session: Session, project: Project, item_id: int) -> Item:
    item = session.scalars(select(Item).where(Item.id == item_id).with_for_update(key_share=True)).first()
    if item is None or item.project_id != project.id:
        raise NotFound(f"item {item_id} is not in this project")
    return item


def refresh_item(session: Session, *, project: Project, item: Item) -> None:
    """Recompute an item's count, majority label (None on a tie) and state from its annotations."""
    labels = session.scalars(select(Annotation.label).where(
        Annotation.item_id == item.id, Annotation.skipped.is_(False))).all()
    item.n_annotations = len(labels)
    top = Counter(labels).most_common(2)
    majority = top[0][0] if top and (len(top) == 1 or top[0][1] > top[1][1]) else None
    had_label = item.final_label is not None
    item.final_label = item.adjudicated_label or majority
    change = (item.final_label is not None) - had_label
    if change and not item.is_holdout:
        # An increment in SQL, not on the loaded object: concurrent transactions (PostgreSQL) each
        # add theirs under the row lock, where a read-modify-write of a stale copy would lose some.
        session.execute(update(Project).where(Project.id == project.id)
                        .values(n_training_labels=Project.n_training_labels + change)
                        .execution_options(synchronize_session=False))
    wanted = project.annotations_per_item + (item.extra_annotations or 0)  # a lead may ask for one more
    # a lead's decision settles the item: it is not served for opinions it would override (QA)
    settled = item.adjudicated_label is not None or item.n_annotations >= wanted
    item.state = ItemState.done if settled else ItemState.open


def _record(session: Session, *, project: Project, item: Item, user: User, label: str | None,
            seconds_spent: float | None, now: datetime, change: bool) -> tuple[Annotation, bool]:
    """Save one answer (a label, or a skip when label is None). Returns (annotation, created).
    Another answer on an item the user already answered replaces it only with `change`."""
    item = _locked_item(session, project, item.id)
    mine = session.scalar(select(Annotation).where(Annotation.item_id == item.id,
                                                   Annotation.user_id == user.id))
    if mine is not None:
        if mine.label == label and mine.skipped == (label is None):
            return mine, False  # the same answer again: a double submit, nothing to change
        if not change:  # a card left open in another tab: the answer given first stands
            given = f"skipped #{item.external_id}" if mine.skipped else \
                f"answered #{item.external_id} as {quoted(mine.label)}"
            raise Conflict(f"You had already {given} (in another tab?), and that stands. To change it, pick it "
                           "under Your last answers.")
        mine.label, mine.skipped, mine.updated_at = label, label is None, now
        # the card it was changed on (Your last answers) held the item: its time is more time spent
        # on this item; then let the card go
        held = session.scalar(select(Lease).where(Lease.item_id == item.id, Lease.user_id == user.id))
        if held is not None:
            if mine.seconds_spent is not None:
                mine.seconds_spent = min(mine.seconds_spent + max((now - held.served_at).total_seconds(), 0.0),
                                         MAX_SECONDS_SPENT)
            session.delete(held)
        refresh_item(session, project=project, item=item)
        maybe_queue_training(session, project=project)
        return mine, False

    # Served to this user (its lease live or expired): the card was on their screen, so the answer is
    # kept even when the item has meanwhile been served to, or answered by, someone else; it is then
    # one opinion more than asked for. Only an answer to an item never served to them can be refused.
    lease = session.scalar(select(Lease).where(Lease.item_id == item.id, Lease.user_id == user.id))
    if lease is None:
        if item.state == ItemState.done:
            raise Conflict("Not saved: this item already has every answer it needs, and it was not served to you "
                           "(or your card for it was open for over a week).")
        if _taken_by_others(session, project=project, item=item, user=user, now=now):
            raise Conflict("Not saved: this item is being labelled by another annotator right now, and it was not "
                           "served to you.")
    if seconds_spent is None and lease is not None:
        seconds_spent = (now - lease.served_at).total_seconds()
    if seconds_spent is not None:
        seconds_spent = max(0.0, min(float(seconds_spent), MAX_SECONDS_SPENT))
    why = Why.of(lease) if lease else Why("direct")
    annotation = Annotation(
        project_id=project.id, item_id=item.id, user_id=user.id, label=label, skipped=label is None,
        created_at=now, updated_at=now, seconds_spent=seconds_spent,
        source=why.source, strategy=why.strategy, score=why.score, model_version=why.model_version)
    session.add(annotation)
    if lease is not None:
        session.delete(lease)
    session.flush()
    refresh_item(session, project=project, item=item)
    if label is not None:
        maybe_queue_training(session, project=project)
    return annotation, True


def _taken_by_others(session: Session, *, project: Project, item: Item, user: User, now: datetime) -> bool:
    """Whether the item's answers and others' live cards on it already make every opinion it asks
    for: then it is not this user's to answer (the condition `_available` serves by)."""
    others = session.scalar(select(func.count()).select_from(Lease).where(
        Lease.item_id == item.id, Lease.user_id != user.id, Lease.expires_at > now)) or 0
    return item.n_annotations + others >= project.annotations_per_item + (item.extra_annotations or 0)


def annotate(session: Session, *, project: Project, item: Item, user: User, label: str,
             seconds_spent: float | None = None, now: datetime | None = None,
             change: bool = True) -> tuple[Annotation, bool]:
    """Record `label` for `item` by `user`; repeating the same submit changes nothing, another label
    replaces theirs (with `change`; the card refuses it: see `_record`)."""
    if label not in project.labels:
        raise InvalidInput(f"{quoted(label)} is not a label of this project; use one of "
                           + ", ".join(map(quoted, project.labels)) + ".")
    return _record(session, project=project, item=item, user=user, label=label,
                   seconds_spent=seconds_spent, now=now or utcnow(), change=change)


def skip(session: Session, *, project: Project, item: Item, user: User,
         now: datetime | None = None, change: bool = True) -> tuple[Annotation, bool]:
    """Record that `user` passed on `item`: it is not served to them again, others still get it."""
    return _record(session, project=project, item=item, user=user, label=None,
                   seconds_spent=None, now=now or utcnow(), change=change)


def _put_aside_held_cards(session: Session, *, project: Project, user: User, now: datetime) -> None:
    """The user goes back to an earlier answer: the card they had on screen waits, and its clock stops
    until `next_item` hands it back (a card already put aside keeps its earlier pause)."""
    session.execute(update(Lease).where(Lease.user_id == user.id, Lease.project_id == project.id,
                                        Lease.paused_at.is_(None))
                    .values(paused_at=now))


@dataclass
class Undone:
    """What an undo took back: the answer's item, and the card to answer it again on (None when the
    item no longer wants this user's opinion: others finished it after they skipped it)."""

    item: Item
    served: Served | None
    given: str | None = None  # the label taken back; None for a skip
    held_by_others: bool = False  # (no card) someone else is labelling the item now


def undo_last(session: Session, *, project: Project, user: User, now: datetime | None = None,
              expected: int | None = None) -> Undone | None:
    """Take back the user's latest answer in the project; the item comes back to them, leased. None
    when there is nothing to undo. With `expected` (the answer the page showed as the latest), an
    undo sent again (a proxy's 504, a retry) finds another latest answer and refuses (Conflict)
    instead of taking that one back too."""
    now = now or utcnow()
    # the latest of Your last answers (labels that came in a pool file are none: undo passes over them)
    latest = recent_answers(session, project=project, user=user, limit=1)
    if not latest:
        return None
    last = latest[0][0]
    if expected is not None and last.id != expected:
        # (answer ids are never reused, so a taken-back answer's id names no other; a change of the
        # answer keeps its id: the page's undo still means it)
        if session.get(Annotation, expected) is None:
            raise Conflict("That answer was already taken back (in another tab, or this undo reached the server "
                           "twice); nothing more was undone.")
        latest_item = session.get(Item, last.item_id)
        raise Conflict(f"Nothing was undone: you answered again after this page showed your answers (in another "
                       f"tab?), and the latest is now the one on #{latest_item.external_id}. Undo again to take that "
                       "one back.")
    item = _locked_item(session, project, last.item_id)
    why, seconds_before, given = Why.of(last), last.seconds_spent or 0.0, last.label  # (no label: a skip)
    _put_aside_held_cards(session, project=project, user=user, now=now)
    session.delete(last)
    session.flush()
    refresh_item(session, project=project, item=item)
    if given is None and _taken_by_others(session, project=project, item=item, user=user, now=now):
        # others gave it every opinion asked for after this user skipped it, or hold it on their
        # cards now: a label now would be one too many (on a one-opinion project, a tie that unsets
        # the label they gave). A skip takes no place, so this is the undo that can meet it.
        return Undone(item, None, given, held_by_others=item.state != ItemState.done)
    lease = _hold(session, project=project, item=item, user=user, why=why, now=now)
    # the first look counts too: the answer given again is charged both
    lease.served_at = now - timedelta(seconds=seconds_before)
    return Undone(item, Served(item, lease), given)


def answer_again(session: Session, *, project: Project, user: User, item: Item,
                 now: datetime | None = None) -> tuple[Served, Annotation] | None:
    """Serve an item the user answered (picked under Your last answers) so they can change the
    answer. The answer stays until a new one replaces it: walking away, or undo, loses nothing.
    None if they have no answer on it from a card."""
    mine = session.scalar(select(Annotation).where(
        Annotation.item_id == item.id, Annotation.user_id == user.id, Annotation.source != ServeSource.imported))
    if mine is None:
        return None
    now = now or utcnow()
    if mine.skipped and item.state == ItemState.done:
        raise Conflict(f"#{item.external_id} has every opinion it asks for now (others answered it after you "
                       "skipped it), so it needs no answer from you.")
    if mine.skipped and _taken_by_others(session, project=project, item=item, user=user, now=now):
        raise Conflict(f"Someone else is labelling #{item.external_id} now (it was served to them after you "
                       "skipped it); it comes back to you only if they pass on it.")
    _put_aside_held_cards(session, project=project, user=user, now=now)
    return Served(item, _hold(session, project=project, item=item, user=user, why=Why.of(mine), now=now)), mine


def recent_answers(session: Session, *, project: Project, user: User, limit: int = 5) -> list[tuple[Annotation, Item]]:
    rows = session.execute(
        select(Annotation, Item).join(Item, Item.id == Annotation.item_id)
        .where(Annotation.user_id == user.id, Annotation.project_id == project.id,
               Annotation.source != ServeSource.imported)
        .order_by(Annotation.updated_at.desc(), Annotation.id.desc()).limit(limit)).all()
    return [(a, i) for a, i in rows]


@dataclass
class Progress:
    mine_today: int
    mine_total: int
    project_done: int
    project_remaining: int
    project_total: int


def progress(session: Session, *, project: Project, user: User, now: datetime | None = None) -> Progress:
    now = now or utcnow()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    # labels that came in a pool file are not the importer's work on cards (undo passes over them too)
    mine = (select(func.count()).select_from(Annotation)
            .where(Annotation.user_id == user.id, Annotation.project_id == project.id,
                   Annotation.skipped.is_(False), Annotation.source != ServeSource.imported))
    counts = dict(session.execute(select(Item.state, func.count()).where(Item.project_id == project.id)
                                  .group_by(Item.state)).all())
    done, remaining = counts.get(ItemState.done, 0), counts.get(ItemState.open, 0)
    return Progress(
        mine_today=session.scalar(mine.where(Annotation.created_at >= midnight)) or 0,
        mine_total=session.scalar(mine) or 0,
        project_done=done,
        project_remaining=remaining,
        project_total=done + remaining,
    )


def open_skipped(session: Session, *, project: Project, user: User, limit: int = 10) -> list[Item]:
    """Open items this user skipped, oldest skip first: the last card offers them, since skipped
    items are not served to them again and Your last answers shows only the latest five."""
    return list(session.scalars(
        select(Item).join(Annotation, Annotation.item_id == Item.id)
        .where(Annotation.user_id == user.id, Annotation.project_id == project.id,
               Annotation.skipped.is_(True), Item.state == ItemState.open)
        .order_by(Annotation.updated_at, Annotation.id).limit(limit)))


def open_with_my_answer(session: Session, *, project: Project, user: User) -> tuple[int, int]:
    """(skipped, answered): open items this user skipped, and open items that have their answer and
    wait for others' opinions. Said on the last card, when nothing is left for them."""
    counts = dict(session.execute(
        select(Annotation.skipped, func.count()).join(Item, Item.id == Annotation.item_id)
        .where(Annotation.user_id == user.id, Annotation.project_id == project.id, Item.state == ItemState.open)
        .group_by(Annotation.skipped)).all())
    return counts.get(True, 0), counts.get(False, 0)
