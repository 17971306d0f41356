"""The background worker: claim retrain jobs from the job table and run them.

A claim is one short write transaction: `FOR UPDATE SKIP LOCKED` on PostgreSQL, and on SQLite
the write lock that BEGIN IMMEDIATE takes. A job whose worker stops sending heartbeats (killed,
machine gone) goes back to the queue; training is safe to repeat, since it only adds a model
version and swaps the served ranking.
"""

import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, exists, select, update

from app.config import get_settings
from app.db import session_scope
from app.models import Job, JobStatus, Lease, Project, utcnow
from app.projects.deletion import DELETE_KIND, purge_project
from app.quality.jobs import QUALITY_KINDS, QualityError, queue_quality, run_quality_job
from app.simulations.service import run_simulation
from app.training.cold_start import compute_coverage
from app.training.service import TrainingError, train_and_rank

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 5.0
JOB_KINDS = ("train", "cold_start", "simulate", *QUALITY_KINDS, DELETE_KIND)
# Long jobs run in a thread of their own, so retrains never queue behind one.
BACKGROUND_KINDS = ("simulate", *QUALITY_KINDS, DELETE_KIND)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def requeue_stale_jobs() -> int:
    """Put back jobs whose worker went silent; give up on a job after too many attempts."""
    settings = get_settings()
    cutoff = utcnow() - timedelta(seconds=settings.job_stale_seconds)
    with session_scope() as session:
        stale = session.scalars(select(Job).where(Job.status == JobStatus.running,
                                                  Job.heartbeat_at < cutoff)).all()
        for job in stale:
            if job.attempts >= settings.job_max_attempts:
                job.status, job.finished_at = JobStatus.failed, utcnow()
                job.error = f"the worker stopped responding {job.attempts} times while running this job"
            else:
                job.status, job.worker_id = JobStatus.queued, None
        return len(stale)


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    kind: str


def claim_statement(kinds: tuple[str, ...] = JOB_KINDS):
    """The select that picks the job to claim: FOR UPDATE SKIP LOCKED (PostgreSQL renders it, SQLite
    drops it and relies on BEGIN IMMEDIATE), so concurrent workers pass over a job being claimed."""
    running = Job.__table__.alias("running")
    busy = exists().where(running.c.project_id == Job.project_id, running.c.kind == Job.kind,
                          running.c.status == JobStatus.running)
    # a deleted project's only job is the one removing it (one queued after the deletion, by a
    # retrain that was running then, is never claimed)
    deleted = exists().where(Project.id == Job.project_id, Project.deleted_at.is_not(None))
    return (select(Job).where(Job.status == JobStatus.queued, Job.kind.in_(kinds), ~busy,
                              ~deleted | (Job.kind == DELETE_KIND))
            .order_by((Job.kind != "train"), Job.id).limit(1)
            .with_for_update(skip_locked=True))


def claim_next_job(worker_id: str, kinds: tuple[str, ...] = JOB_KINDS) -> ClaimedJob | None:
    """Mark the oldest runnable job of `kinds` as ours (retrains before simulations); None when idle.

    A project's retrains run one at a time, so two workers never train the same project at once.
    """
    with session_scope() as session:
        job = session.scalars(claim_statement(kinds)).first()
        if job is None:
            return None
        now = utcnow()
        job.status, job.worker_id, job.started_at, job.heartbeat_at = JobStatus.running, worker_id, now, now
        job.attempts += 1
        return ClaimedJob(job.id, job.kind)


def _heartbeat(job_id: int, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_SECONDS):
        try:
            with session_scope() as session:
                session.execute(update(Job).where(Job.id == job_id, Job.status == JobStatus.running)
                                .values(heartbeat_at=utcnow()))
        except Exception:  # a missed beat is harmless; the next one retries
            log.warning("heartbeat for job %s failed", job_id, exc_info=True)


def run_job(job_id: int) -> None:
    """Run one claimed job and record how it ended."""
    with session_scope(write=False) as session:
        job = session.get(Job, job_id)
        project_id, kind, params = job.project_id, job.kind, dict(job.params or {})
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(job_id, stop), daemon=True)
    beat.start()
    status, error, model_version_id, n_labels = JobStatus.done, None, None, None
    try:
        if kind == "simulate":
            run_simulation(params["simulation_id"])
        elif kind == "cold_start":
            compute_coverage(project_id)
        elif kind == DELETE_KIND:
            purge_project(project_id)
        elif kind in QUALITY_KINDS:
            run_quality_job(kind, project_id, params)
        else:
            trained = train_and_rank(project_id)
            # the labels the model was fitted on (more than were in when the job was queued)
            model_version_id, n_labels = trained.model_version_id, trained.n_labels
    except (TrainingError, QualityError) as exc:
        status, error = JobStatus.failed, str(exc)
    except Exception as exc:
        log.exception("job %s failed", job_id)
        status = JobStatus.failed
        # what a lead reads on the dashboard: the error itself; the traceback is in the worker's log
        error = f"{type(exc).__name__}: {exc} (the worker's log has the details)"
    finally:
        stop.set()
        beat.join()
    with session_scope() as session:
        session.execute(update(Job).where(Job.id == job_id).values(
            status=status, error=error, finished_at=utcnow(), model_version_id=model_version_id,
            **({"n_labels": n_labels} if n_labels is not None else {})))
        project = session.get(Project, project_id)
        # label quality of the new model, off this path (not for a project deleted meanwhile)
        if kind == "train" and model_version_id is not None and project is not None and project.deleted_at is None:
            queue_quality(session, project_id=project_id, model_version_id=model_version_id)


# An expired lease still says the card was on its holder's screen, and an answer sent on it is kept
# (labeling.service._record): a card left open over lunch or a weekend must not lose its answer.
# The rows are few (one per card a person left open), so they go only after this long.
EXPIRED_LEASES_KEPT = timedelta(days=7)


def drop_expired_leases() -> None:
    with session_scope() as session:
        session.execute(delete(Lease).where(Lease.expires_at < utcnow() - EXPIRED_LEASES_KEPT))


def run_worker(*, stop: threading.Event | None = None, once: bool = False, parent_pid: int | None = None) -> int:
    """Work until stopped (SIGTERM/SIGINT or `stop`); with `once`, until the queue is empty; with
    `parent_pid`, also once that process is gone (this one has been handed to another parent).

    Returns the number of jobs run.
    """
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    name, done, last_sweep = worker_name(), 0, 0.0
    poll = get_settings().worker_poll_seconds
    # Simulations and label-quality jobs can run for minutes: one at a time in a thread of their own.
    simulation: threading.Thread | None = None
    log.info("worker %s started", name)
    while not stop.is_set():
        if parent_pid is not None and os.getppid() != parent_pid:
            log.info("worker %s stops: the process that started it has ended", name)
            break
        if time.monotonic() - last_sweep > 30:
            requeue_stale_jobs()
            drop_expired_leases()
            last_sweep = time.monotonic()
        simulating = simulation is not None and simulation.is_alive()
        job = None
        if not simulating and not once:
            # The background thread is free: give it the oldest background job first. Retrains are
            # claimed first otherwise, and while labels keep coming a queued retrain is always
            # waiting, so label-quality jobs would never get their turn.
            job = claim_next_job(name, kinds=BACKGROUND_KINDS)
        if job is None:
            job = claim_next_job(name, kinds=tuple(k for k in JOB_KINDS if k not in BACKGROUND_KINDS)
                                 if simulating else JOB_KINDS)
        if job is None:
            if once and not simulating:
                break
            stop.wait(poll)
            continue
        if job.kind in BACKGROUND_KINDS and not once:
            simulation = threading.Thread(target=run_job, args=(job.id,), name=f"{job.kind}-{job.id}", daemon=True)
            simulation.start()
        else:
            run_job(job.id)
        done += 1
    log.info("worker %s stopped after %s jobs", name, done)
    return done
