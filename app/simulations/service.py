"""Strategy simulations on a project's own labels: queued from a page or the API, run by the worker."""

from dataclasses import asdict

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.al import STRATEGIES
from app.al.simulate import Dataset, SimulationConfig, simulate
from app.db import session_scope
from app.errors import InvalidInput
from app.models import Item, Job, JobStatus, Project, Simulation, User, utcnow
from app.training.features import feature_kind, raw_inputs

# Enough for a curve worth reading: a test set and a few batches beyond the initial labels.
MIN_LABELS = 60


def training_labels(session: Session, project: Project) -> Dataset:
    rows = session.execute(select(Item.payload, Item.final_label).where(
        Item.project_id == project.id, Item.final_label.is_not(None)).order_by(Item.id)).all()
    return Dataset(project.name, feature_kind(project), raw_inputs(feature_kind(project), [r[0] for r in rows]),
                   np.asarray([r[1] for r in rows], dtype=object), list(project.feature_names or []))


def queue_simulation(session: Session, *, project: Project, user: User | None, strategies: list[str],
                     initial: int = 20, budget: int | None = None, repeats: int = 3,
                     test_fraction: float = 0.3) -> Simulation:
    """Check the request against the project's labels now (a 422 beats a failed job later) and queue it."""
    unknown = [s for s in strategies if s not in STRATEGIES]
    if not strategies or unknown:
        raise InvalidInput(f"choose strategies among {', '.join(STRATEGIES)}"
                           + (f"; unknown: {', '.join(unknown)}" if unknown else ""))
    if not 1 <= repeats <= 10:
        raise InvalidInput("repeats must be between 1 and 10")
    dataset = training_labels(session, project)
    n = len(dataset.y)
    if n < MIN_LABELS or len(set(dataset.y.tolist())) < 2:
        raise InvalidInput(f"a simulation needs at least {MIN_LABELS} labels of two or more classes; "
                           f"this project has {n}")
    pool = int(n * (1 - test_fraction))
    budget = min(budget or 300, pool)
    config = SimulationConfig(initial=min(initial, max(2, pool // 4)), batch_size=project.batch_size,
                              budget=budget, test_fraction=test_fraction, repeats=repeats)
    try:
        config.validate(n)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    simulation = Simulation(project_id=project.id, created_by_id=user.id if user else None, status="queued",
                            strategies=strategies, config=asdict(config))
    session.add(simulation)
    session.flush()
    session.add(Job(project_id=project.id, kind="simulate", status=JobStatus.queued, n_labels=n,
                    params={"simulation_id": simulation.id}))
    session.flush()
    return simulation


def run_simulation(simulation_id: int) -> None:
    """The worker's side: replay the labels and store the result (or the reason it failed)."""
    with session_scope(write=False) as session:
        simulation = session.get(Simulation, simulation_id)
        project = session.get(Project, simulation.project_id)
        dataset = training_labels(session, project)
        strategies, config = list(simulation.strategies), SimulationConfig(**simulation.config)
    with session_scope() as session:
        session.get(Simulation, simulation_id).status = "running"
    try:
        result = simulate(dataset, strategies, config=config)
    except Exception as exc:
        with session_scope() as session:
            row = session.get(Simulation, simulation_id)
            row.status, row.error, row.finished_at = "failed", f"{type(exc).__name__}: {exc}", utcnow()
        raise
    with session_scope() as session:
        row = session.get(Simulation, simulation_id)
        row.status, row.result, row.finished_at = "done", result, utcnow()


def list_simulations(session: Session, *, project_id: int, limit: int = 5) -> list[Simulation]:
    return list(session.scalars(select(Simulation).where(Simulation.project_id == project_id)
                                .order_by(Simulation.id.desc()).limit(limit)))


def curve_svg_paths(result: dict, width: int = 560, height: int = 240, pad: int = 32) -> dict:
    """Mean learning curve per strategy as SVG polyline points, with the axes' ranges."""
    means = {}
    for name in result["summary"]:
        curves = np.asarray([r["curve"] for r in result["runs"] if r["strategy"] == name], dtype=float)
        means[name] = (curves[0, :, 0], curves[:, :, 1].mean(axis=0))
    xs = np.concatenate([x for x, _ in means.values()])
    ys = np.concatenate([y for _, y in means.values()])
    x0, x1 = float(xs.min()), float(xs.max()) or 1.0
    y0, y1 = float(np.floor(ys.min() * 20) / 20), float(np.ceil(ys.max() * 20) / 20)
    y1 = y1 if y1 > y0 else y0 + 0.05
    sx = lambda x: pad + (x - x0) / max(x1 - x0, 1e-9) * (width - 2 * pad)  # noqa: E731
    sy = lambda y: height - pad - (y - y0) / (y1 - y0) * (height - 2 * pad)  # noqa: E731
    lines = {name: " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(*xy, strict=True))
             for name, xy in means.items()}
    return {"lines": lines, "x_range": (x0, x1), "y_range": (y0, y1), "width": width, "height": height,
            "pad": pad}
