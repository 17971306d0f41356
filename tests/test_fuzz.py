"""Hostile input found by machines: hypothesis against the upload parser, schemathesis against the
OpenAPI schema. Neither may ever produce an unexpected exception or a 5xx."""

import io

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from app.main import create_app
from app.pool.parsing import PoolParser

FORMATS = ["csv", "jsonl", "parquet"]
KINDS = ["text", "tabular"]

# Text that looks like a pool file often enough to reach the deep branches: headers, quotes,
# separators, numbers, NaN, JSON punctuation, odd bytes.
pool_alphabet = st.sampled_from(list('id,text,f1,f2\n"\'{}[]:;\t\r 0123456789.-+eEnaNinf\\\x00é€'))
pool_like = st.lists(pool_alphabet, max_size=400).map(lambda cs: "".join(cs).encode("utf-8", "surrogatepass"))


def parse(data: bytes, kind: str, fmt: str) -> PoolParser:
    parser = PoolParser(io.BytesIO(data), kind=kind, fmt=fmt)
    items = list(parser)
    assert items or parser.errors  # either something to import or a reason not to
    if parser.errors:
        assert all(isinstance(e, str) and e for e in parser.errors)
    return parser


@settings(max_examples=300, deadline=None)
@given(data=st.one_of(st.binary(max_size=600), pool_like), kind=st.sampled_from(KINDS),
       fmt=st.sampled_from(FORMATS))
def test_parser_never_raises_on_arbitrary_bytes(data, kind, fmt):
    parse(data, kind, fmt)


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.lists(st.one_of(st.text(max_size=12), st.floats(allow_nan=True, allow_infinity=True),
                                        st.integers()), min_size=1, max_size=4), max_size=15),
       kind=st.sampled_from(KINDS))
def test_parser_on_generated_csv_tables(rows, kind):
    import csv

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "text", "f1", "f2"][: max((len(r) for r in rows), default=1)])
    writer.writerows(rows)
    parse(out.getvalue().encode(), kind, "csv")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=300), pool_like), kind=st.sampled_from(KINDS),
       name=st.sampled_from(["p.csv", "p.jsonl", "p.parquet", "p.bin", "noext"]))
def test_upload_api_answers_4xx_never_5xx(users, data, kind, name):
    if not hasattr(test_upload_api_answers_4xx_never_5xx, "api"):
        _, token = users.create("fuzz-admin", "admin")
        test_upload_api_answers_4xx_never_5xx.api = users.api(token)
    api = test_upload_api_answers_4xx_never_5xx.api
    pid = api.post("/api/v1/projects", json={"name": "fuzz", "kind": kind, "labels": ["a", "b"]}).json()["id"]
    response = api.post(f"/api/v1/projects/{pid}/items", files={"file": (name, data, "application/octet-stream")})
    assert response.status_code in (201, 413, 422), response.text
    if response.status_code == 422:
        assert response.json()["errors"] or response.json()["detail"]


schema = schemathesis.openapi.from_asgi("/openapi.json", create_app())


@pytest.fixture
def admin_token(users):
    _, token = users.create("schema-admin", "admin")
    api = users.api(token)
    pid = api.post("/api/v1/projects", json={"name": "s", "kind": "text", "labels": ["a", "b"]}).json()["id"]
    api.post(f"/api/v1/projects/{pid}/items", files={"file": ("p.csv", b"text\none\ntwo\n", "text/csv")})
    return token


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_answers_5xx(case, admin_token):
    case.call_and_validate(headers={"Authorization": f"Bearer {admin_token}"}, checks=[not_a_server_error])
