"""Label quality in the product: the worker's job after each retrain, the review decisions, the influence
ranking and "why this prediction", on a small tabular pool with labels flipped on purpose."""

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sqlalchemy import func, select

from app.db import session_scope
from app.errors import Conflict, InvalidInput, NotFound
from app.labeling import service as labeling
from app.models import Item, ItemQuality, ItemState, Job, LabelReview, Project, QualityReport, RankingEntry, User
from app.quality import explain, service
from app.training.queue import queue_training
from tests.conftest import run_worker_until_idle

N_ITEMS, N_HOLDOUT, N_FLIPPED = 240, 60, 12


def _csv() -> tuple[bytes, list[str]]:
    data = load_breast_cancer()
    rng = np.random.default_rng(0)
    rows = rng.choice(len(data.target), size=N_ITEMS, replace=False)
    columns = [f"f{j}" for j in range(8)]  # the first eight features are plenty for a linear model here
    lines = ["id," + ",".join(columns)]
    gold = []
    for n, r in enumerate(rows):
        lines.append(f"c{n}," + ",".join(f"{v:.6g}" for v in data.data[r, :8]))
        gold.append(str(data.target_names[data.target[r]]))
    return "\n".join(lines).encode(), gold


@pytest.fixture
def labelled_pool(users):
    """A tabular project, every item labelled by `ann` (some wrongly), a quarter of them in the holdout.

    The holdout is chosen here, not drawn at serve time, so the test does not depend on the coin."""
    _, admin_token = users.create("boss", "admin")
    users.create("lead", "lead")
    users.create("ann", "annotator")
    users.create("bob", "annotator")
    admin = users.api(admin_token)
    pid = admin.post("/api/v1/projects", json={
        "name": "Cells", "kind": "tabular", "labels": ["malignant", "benign"], "batch_size": 1000,
        "holdout_fraction": 0.0, "members": ["lead", "ann", "bob"]}).json()["id"]
    body, gold = _csv()
    assert admin.post(f"/api/v1/projects/{pid}/items", files={"file": ("c.csv", body, "text/csv")}).status_code == 201
    rng = np.random.default_rng(1)
    flipped_rows = set(rng.choice(np.arange(N_HOLDOUT, N_ITEMS), size=N_FLIPPED, replace=False).tolist())
    flip = {"malignant": "benign", "benign": "malignant"}
    with session_scope() as session:
        project = session.get(Project, pid)
        ann = session.scalar(select(User).where(User.username == "ann"))
        items = session.scalars(select(Item).where(Item.project_id == pid).order_by(Item.id)).all()
        flipped_ids = set()
        for n, item in enumerate(items):
            number = int(item.external_id[1:])
            item.is_holdout = n < N_HOLDOUT
            label = gold[number]
            if n in flipped_rows:
                label = flip[label]
                flipped_ids.add(item.id)
            labeling.annotate(session, project=project, item=item, user=ann, label=label)
        queue_training(session, project=project, n_labels=N_ITEMS - N_HOLDOUT)
    run_worker_until_idle()
    return {"pid": pid, "admin": admin, "flipped": flipped_ids, "gold": gold}


def _project(session, pid) -> Project:
    return session.get(Project, pid)


def _user(session, name) -> User:
    return session.scalar(select(User).where(User.username == name))


def test_the_worker_scores_every_training_label_after_a_retrain(labelled_pool):
    pid = labelled_pool["pid"]
    with session_scope(write=False) as session:
        project = _project(session, pid)
        report = session.scalar(select(QualityReport).where(QualityReport.project_id == pid))
        assert report is not None and report.model_version_id == project.current_model_version_id
        assert (report.n_items, report.n_holdout) == (N_ITEMS - N_HOLDOUT, N_HOLDOUT)
        rows = session.scalars(select(ItemQuality).where(ItemQuality.model_version_id == report.model_version_id)).all()
        training = set(session.scalars(select(Item.id).where(Item.project_id == pid, Item.is_holdout.is_(False))))
        assert {r.item_id for r in rows} == training  # every training item, no holdout item
        assert all(0 <= r.score <= 1 and r.self_influence >= 0 and r.loo_p_given is not None for r in rows)
        assert all(r.holdout_influence is not None for r in rows)
        kinds = session.execute(select(Job.kind, Job.status).where(Job.kind.in_(("train", "quality")))
                                .order_by(Job.id)).all()
        assert kinds == [("train", "done"), ("quality", "done")]


def test_flipped_labels_are_found(labelled_pool):
    pid, flipped = labelled_pool["pid"], labelled_pool["flipped"]
    with session_scope(write=False) as session:
        project = _project(session, pid)
        st = service.status(session, project=project)
        rows = service.suspicious(session, project=project, report=st.report)
        listed = {r["item_id"] for r in rows}
        top = [r["item_id"] for r in rows[:N_FLIPPED]]
        # The breast-cancer cells separate well: a flipped label contradicts its neighbours.
        assert len(flipped & set(top)) >= N_FLIPPED * 2 // 3, (len(flipped & set(top)), len(rows))
        assert len(flipped & listed) >= N_FLIPPED * 3 // 4
        flagged = session.scalars(select(ItemQuality.item_id).where(ItemQuality.flagged.is_(True))).all()
        assert len(flipped & set(flagged)) >= N_FLIPPED * 2 // 3
        # the queue holds about as many labels as confident learning estimates are wrong, not every
        # label the model is unsure of
        assert listed == set(flagged) and len(listed) <= 2 * N_FLIPPED, (len(listed), N_FLIPPED)
        assert 0.7 <= st.report.details["oof_accuracy"] <= 1
        first = rows[0]
        assert first["suggested_label"] != first["given_label"]
        assert first["labelled_by"] == [f"ann: {first['given_label']}"]
        # The flipped labels harm the holdout on the whole: the harmful side holds more of them than the helpful one.
        sides = service.most_influential(session, report=st.report, per_side=20)
        harmful = {r["item_id"] for r in sides["harmful"]}
        helpful = {r["item_id"] for r in sides["helpful"]}
        assert len(flipped & harmful) > len(flipped & helpful)
        assert all(r["holdout_influence"] < 0 for r in sides["harmful"])
        assert all(r["holdout_influence"] > 0 for r in sides["helpful"])


def _first_suspicious(pid) -> dict:
    with session_scope(write=False) as session:
        project = _project(session, pid)
        return service.suspicious(session, project=project, report=service.status(session, project=project).report)[0]


def test_relabel_decides_the_label_and_queues_a_retrain(labelled_pool):
    pid = labelled_pool["pid"]
    row = _first_suspicious(pid)
    with session_scope() as session:
        project, lead = _project(session, pid), _user(session, "lead")
        decision, created = service.review(session, project=project, item_id=row["item_id"], user=lead,
                                           action="relabel", label=row["suggested_label"])
        assert created and decision.previous_label == row["given_label"]
        item = session.get(Item, row["item_id"])
        assert (item.adjudicated_label, item.final_label) == (row["suggested_label"], row["suggested_label"])
        assert session.scalar(select(Job).where(Job.kind == "train", Job.status == "queued")) is not None
    with session_scope() as session:  # the same decision again changes nothing
        again, created = service.review(session, project=_project(session, pid), item_id=row["item_id"],
                                        user=_user(session, "lead"), action="relabel", label=row["suggested_label"])
        assert not created and again.id == decision.id
        assert session.scalar(select(func.count()).select_from(LabelReview)) == 1
    with session_scope(write=False) as session:  # no longer listed
        project = _project(session, pid)
        report = service.status(session, project=project).report
        assert row["item_id"] not in {r["item_id"] for r in service.suspicious(session, project=project, report=report)}
    run_worker_until_idle()  # the retrain learns the decision, and its report judges the new label
    with session_scope(write=False) as session:
        project = _project(session, pid)
        st = service.status(session, project=project)
        assert st.report_version == st.current_version == 2
        quality = session.get(ItemQuality, (st.report.model_version_id, row["item_id"]))
        assert quality.given_label == row["suggested_label"]
        assert session.scalar(select(func.count()).select_from(QualityReport)) == 1  # the older one is gone


def test_confirm_keeps_the_label_and_hides_it(labelled_pool):
    pid = labelled_pool["pid"]
    row = _first_suspicious(pid)
    with session_scope() as session:
        project = _project(session, pid)
        decision, created = service.review(session, project=project, item_id=row["item_id"],
                                           user=_user(session, "lead"), action="confirm")
        assert created and decision.label == row["given_label"]
        assert session.get(Item, row["item_id"]).final_label == row["given_label"]
        assert session.scalar(select(Job).where(Job.kind == "train", Job.status == "queued")) is None
        _, created = service.review(session, project=project, item_id=row["item_id"],
                                    user=_user(session, "lead"), action="confirm")
        assert not created
    with session_scope() as session:  # a new report on the same labels still does not list it
        project = _project(session, pid)
        queue_training(session, project=project, n_labels=N_ITEMS - N_HOLDOUT)
    run_worker_until_idle()
    with session_scope(write=False) as session:
        project = _project(session, pid)
        st = service.status(session, project=project)
        assert st.report_version == 2
        assert session.get(ItemQuality, (st.report.model_version_id, row["item_id"])) is not None
        assert row["item_id"] not in {r["item_id"] for r in service.suspicious(session, project=project,
                                                                               report=st.report)}


def test_requeue_opens_the_item_for_someone_who_has_not_labelled_it(labelled_pool):
    pid = labelled_pool["pid"]
    row = _first_suspicious(pid)
    with session_scope() as session:
        project = _project(session, pid)
        _, created = service.review(session, project=project, item_id=row["item_id"], user=_user(session, "lead"),
                                    action="requeue")
        assert created
        item = session.get(Item, row["item_id"])
        assert (item.state, item.extra_annotations, item.final_label) == (ItemState.open, 1, row["given_label"])
        pinned = session.scalar(select(RankingEntry).where(
            RankingEntry.model_version_id == project.current_model_version_id, RankingEntry.item_id == item.id))
        assert pinned is not None and pinned.rank < 0
        _, created = service.review(session, project=project, item_id=row["item_id"], user=_user(session, "lead"),
                                    action="requeue")
        assert not created and session.get(Item, row["item_id"]).extra_annotations == 1  # a double submit
    with session_scope() as session:
        project = _project(session, pid)
        assert labeling.next_item(session, project=project, user=_user(session, "ann")) is None  # she labelled it
        served = labeling.next_item(session, project=project, user=_user(session, "bob"))
        assert served is not None and served.item.id == row["item_id"]
        # the card and the answer say a lead asked, not that the strategy chose it (QA)
        assert (served.why.source, served.why.strategy, served.why.score) == ("ranking", "second opinion", None)
        answer, _ = labeling.annotate(session, project=project, item=served.item, user=_user(session, "bob"),
                                      label=row["suggested_label"])
        assert (answer.strategy, answer.score) == ("second opinion", None)
        item = session.get(Item, row["item_id"])
        # two opinions that disagree: no training label until a lead decides (the disagreements page)
        assert (item.state, item.n_annotations, item.final_label) == (ItemState.done, 2, None)


def test_review_refusals(labelled_pool, users):
    pid = labelled_pool["pid"]
    row = _first_suspicious(pid)
    with session_scope() as session:
        project, lead = _project(session, pid), _user(session, "lead")
        with pytest.raises(InvalidInput):
            service.review(session, project=project, item_id=row["item_id"], user=lead, action="relabel",
                           label="no-such-label")
        with pytest.raises(InvalidInput):
            service.review(session, project=project, item_id=row["item_id"], user=lead, action="delete")
        holdout = session.scalar(select(Item.id).where(Item.project_id == pid, Item.is_holdout.is_(True)).limit(1))
        with pytest.raises(InvalidInput):
            service.review(session, project=project, item_id=holdout, user=lead, action="confirm")
        other = session.scalar(select(func.max(Item.id))) + 1
        with pytest.raises(NotFound):
            service.review(session, project=project, item_id=other, user=lead, action="confirm")
        service.review(session, project=project, item_id=row["item_id"], user=lead, action="relabel",
                       label=row["suggested_label"])
        with pytest.raises(Conflict):  # a decided label is not sent for another opinion
            service.review(session, project=project, item_id=row["item_id"], user=lead, action="requeue")


def test_no_holdout_labels_means_no_influence(users):
    _, token = users.create("boss", "admin")
    api = users.api(token)
    pid = api.post("/api/v1/projects", json={"name": "NoHoldout", "kind": "tabular", "labels": ["malignant", "benign"],
                                             "batch_size": 30, "holdout_fraction": 0.0}).json()["id"]
    body, gold = _csv()
    api.post(f"/api/v1/projects/{pid}/items", files={"file": ("c.csv", body, "text/csv")})
    for _ in range(40):
        item = api.get(f"/api/v1/projects/{pid}/next").json()
        api.post(f"/api/v1/items/{item['id']}/annotations", json={"label": gold[int(item["external_id"][1:])]})
    run_worker_until_idle()
    with session_scope(write=False) as session:
        report = session.scalar(select(QualityReport).where(QualityReport.project_id == pid))
        assert report.n_holdout == 0 and report.approx is None
        assert session.scalar(select(func.count()).select_from(ItemQuality).where(
            ItemQuality.holdout_influence.is_not(None))) == 0
        assert service.most_influential(session, report=report) == {"helpful": [], "harmful": []}


def test_an_older_report_is_shown_as_such_while_the_new_one_is_computed(labelled_pool):
    pid = labelled_pool["pid"]
    with session_scope() as session:
        queue_training(session, project=_project(session, pid), n_labels=N_ITEMS - N_HOLDOUT)
    from app.worker.runner import claim_next_job, run_job

    job = claim_next_job("test:1", kinds=("train",))
    run_job(job.id)  # the retrain only; its quality job stays queued
    with session_scope(write=False) as session:
        st = service.status(session, project=_project(session, pid))
        assert st.stale and st.computing and (st.report_version, st.current_version) == (1, 2)
    run_worker_until_idle()
    with session_scope(write=False) as session:
        st = service.status(session, project=_project(session, pid))
        assert not st.stale and not st.computing and st.report_version == 2


def test_why_this_prediction_lists_helpful_and_harmful_labels(labelled_pool):
    pid, flipped = labelled_pool["pid"], labelled_pool["flipped"]
    with session_scope(write=False) as session:
        project = _project(session, pid)
        holdout = session.scalars(select(Item).where(Item.project_id == pid, Item.is_holdout.is_(True))
                                  .order_by(Item.id).limit(5)).all()
        for item in holdout:
            why = explain.explain(session, project=project, item=item)
            assert why["available"] and why["explained_label"] == item.final_label
            assert abs(sum(why["probabilities"].values()) - 1) < 1e-9
            assert why["helpful"] and all(e["influence"] > 0 for e in why["helpful"])
            assert all(e["influence"] < 0 for e in why["harmful"])
        # the flipped labels are the ones that harm the holdout items' predictions
        harmful = {e["item_id"] for item in holdout for e in explain.explain(session, project=project,
                                                                            item=item)["harmful"]}
        assert harmful & flipped


def test_verify_refits_the_most_influential_items_exactly(labelled_pool):
    pid = labelled_pool["pid"]
    from app.quality.jobs import queue_verify

    with session_scope() as session:
        project = _project(session, pid)
        report = service.status(session, project=project).report
        job = queue_verify(session, project=project, report=report)
        assert queue_verify(session, project=project, report=report).id == job.id  # waiting: the same job
    run_worker_until_idle()
    with session_scope(write=False) as session:
        report = session.scalar(select(QualityReport).where(QualityReport.project_id == pid))
        assert report.verified_at is not None and report.verify["n"] > 10
        assert report.verify["pearson"] > 0.9
        checked = session.scalars(select(ItemQuality).where(ItemQuality.holdout_loo.is_not(None))).all()
        assert len(checked) == report.verify["n"]
        assert all(np.sign(c.holdout_loo) == np.sign(c.holdout_influence) for c in checked
                   if abs(c.holdout_influence) > 0.05)


def test_a_changed_pool_does_not_mislead_the_report(labelled_pool):
    """After a new upload the cached pool matrix is refitted; the report still uses the model's own scaling."""
    pid, admin = labelled_pool["pid"], labelled_pool["admin"]
    extra = "id," + ",".join(f"f{j}" for j in range(8)) + "\n" + "\n".join(
        f"x{n}," + ",".join(str(1000.0 + n) for _ in range(8)) for n in range(5))
    assert admin.post(f"/api/v1/projects/{pid}/items", files={"file": ("x.csv", extra.encode(), "text/csv")}
                      ).status_code == 201
    with session_scope() as session:
        before = {q.item_id: q.p_given for q in session.scalars(select(ItemQuality))}
        session.execute(ItemQuality.__table__.delete())
        session.execute(QualityReport.__table__.delete())
    from app.quality.jobs import compute_quality

    compute_quality(pid)
    with session_scope(write=False) as session:
        after = {q.item_id: q.p_given for q in session.scalars(select(ItemQuality))}
    assert after.keys() == before.keys()
    assert max(abs(after[k] - before[k]) for k in after) < 1e-6
