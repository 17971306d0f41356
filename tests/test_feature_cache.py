"""The pool's feature matrix is computed once and read back from disk by any later worker."""

import numpy as np
import pytest
import scipy.sparse as sp

from app.config import get_settings
from app.db import session_scope
from app.models import Project
from app.training import features as feature_cache
from tests.data import rotten_tomatoes, to_csv


def make_project(users, kind: str):
    _, token = users.create("admin", "admin")
    api = users.api(token)
    body = {"name": kind, "kind": kind, "labels": ["fresh", "rotten", "plot"] if kind == "text" else ["a", "b"]}
    pid = api.post("/api/v1/projects", json=body).json()["id"]
    return api, pid


def upload(api, pid, kind, start: int, n: int):
    if kind == "text":
        rows = rotten_tomatoes(start + n, seed=1)[start:]
        data = to_csv(rows, ["id", "text"])
    else:
        rng = np.random.default_rng(start)
        data = "id,f0,f1,f2\n" + "".join(
            f"r{start + i},{rng.normal():.4f},{rng.normal():.4f},{rng.normal():.4f}\n" for i in range(n))
    assert api.post(f"/api/v1/projects/{pid}/items",
                    files={"file": ("p.csv", data.encode() if isinstance(data, str) else data, "text/csv")}
                    ).status_code == 201


def features_of(pid):
    with session_scope(write=False) as session:
        return feature_cache.pool_features(session, session.get(Project, pid))


def cache_dirs(pid):
    root = get_settings().data_dir / "features" / f"project-{pid}"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


@pytest.mark.parametrize("kind", ["tabular", "text"])
def test_a_new_process_reads_the_matrix_from_disk(users, kind):
    api, pid = make_project(users, kind)
    upload(api, pid, kind, 0, 60)
    first = features_of(pid)
    assert len(cache_dirs(pid)) == 1
    feature_cache.forget()  # as a restarted worker: nothing in memory
    again = features_of(pid)
    assert again is not first and again.key == first.key
    assert np.array_equal(again.item_ids, first.item_ids)
    if kind == "text":
        assert sp.issparse(again.X) and (again.X != first.X).nnz == 0
    else:
        assert isinstance(again.X, np.memmap) and np.array_equal(np.asarray(again.X), first.X)
    raw = ["a new text"] if kind == "text" else np.zeros((1, 3))
    a, b = again.featurizer.transform(raw), first.featurizer.transform(raw)
    assert np.allclose(a.toarray() if sp.issparse(a) else a, b.toarray() if sp.issparse(b) else b)


def test_a_grown_pool_gets_a_new_matrix_and_the_old_one_goes(users):
    api, pid = make_project(users, "tabular")
    upload(api, pid, "tabular", 0, 40)
    old = features_of(pid)
    upload(api, pid, "tabular", 40, 25)
    new = features_of(pid)
    assert new.key != old.key and len(new.item_ids) == 65
    assert cache_dirs(pid) == ["-".join(map(str, new.key))]


def test_an_unreadable_cache_is_recomputed(users):
    api, pid = make_project(users, "tabular")
    upload(api, pid, "tabular", 0, 30)
    first = features_of(pid)
    root = get_settings().data_dir / "features" / f"project-{pid}" / cache_dirs(pid)[0]
    (root / "X.npy").write_bytes(b"not a numpy file")
    feature_cache.forget()
    again = features_of(pid)
    assert np.array_equal(np.asarray(again.X), first.X)
