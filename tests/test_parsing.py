"""The pool parser: good files in every format, and every broken one named by line and column."""

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from app.pool.parsing import UploadError, detect_format, parse_all


def text_csv(body: str) -> bytes:
    return body.encode()


def parse_text(data: bytes, fmt: str = "csv", **kw):
    return parse_all(data, kind="text", fmt=fmt, **kw)


def errors_of(data: bytes, kind: str = "text", fmt: str = "csv", **kw) -> list[str]:
    with pytest.raises(UploadError) as info:
        parse_all(data, kind=kind, fmt=fmt, **kw)
    return info.value.errors


def test_csv_text_with_id_and_metadata():
    items, parser = parse_text(b'id,text,source\n1,"Hello, world",a\n2,"multi\nline",b\n')
    assert [i.external_id for i in items] == ["1", "2"]
    assert items[1].payload == {"text": "multi\nline"}
    assert items[0].meta == {"source": "a"}
    assert parser.plan.meta_columns == ["source"]


def test_csv_with_bom_and_crlf_and_named_text_column():
    items, _ = parse_text("\ufeffreview;x\r\n".replace(";", ",").encode("utf-8")
                          + b"great film,1\r\nawful,2\r\n", text_column="review")
    assert [i.payload["text"] for i in items] == ["great film", "awful"]
    assert all(i.external_id is None for i in items)


def test_broken_quoting_names_the_line_and_says_reading_stopped_there():
    errs = errors_of(b'text\n"fine"\n"broken " quote"\n')
    assert errs[0].startswith("line 3: broken CSV")
    assert errs[1:] == ["the rest of the file could not be read past this; fix it and upload again"]


def test_wrong_field_count_names_the_line():
    errs = errors_of(b"id,text\n1,a\n2,b,extra\n3,c\n")
    assert errs == ["line 3: expected 2 fields, found 3"]


def test_line_numbers_count_multiline_fields():
    errs = errors_of(b'id,text\n1,"two\nlines"\n2,b,extra\n')
    assert errs == ["line 4: expected 2 fields, found 3"]


def test_invalid_utf8_names_every_bad_line_and_no_cap_it_did_not_reach():
    errs = errors_of(b"id,text\n1,ok\n2,caf\xe9\n3,fine\n4,na\xefve\n")
    assert errs == ["line 3: not valid UTF-8 (byte 0xe9 at position 6); save the file as UTF-8",
                    "line 5: not valid UTF-8 (byte 0xef at position 5); save the file as UTF-8"]


def test_a_utf16_file_gets_one_sentence_naming_its_encoding():
    for data in ("id,text\n1,caf\u00e9\n".encode("utf-16"), "id,text\n1,caf\u00e9\n".encode("utf-16-le")):
        assert errors_of(data) == [
            "the file is UTF-16 (it starts with a UTF-16 byte order mark, or its first line has NUL bytes between "
            "its letters); save it as UTF-8",
            "the rest of the file could not be read past this; fix it and upload again"]


@pytest.mark.parametrize("depth, message", [
    (100_000, "line 2: the JSON is nested too deeply to read"),
    (200, "line 2, column 'm': nested deeper than 32 levels"),
])
def test_deeply_nested_jsonl_is_refused_by_line(depth, message):
    deep = "[" * depth + "]" * depth
    data = ('{"id": "a", "text": "x", "m": 1}\n{"id": "b", "text": "x", "m": ' + deep + "}\n").encode()
    assert errors_of(data, fmt="jsonl") == [message]
    ok, _ = parse_text(('{"id": "c", "text": "x", "m": ' + "[" * 32 + "]" * 32 + "}\n").encode(), fmt="jsonl")
    assert len(ok) == 1


def test_a_parquet_file_that_expands_past_the_limit_is_refused_before_it_is_decoded():
    # a few KB on disk: 3,000 rows of the same 1 MB text, dictionary-encoded and compressed
    big = "a" * 1_000_000
    text = pa.DictionaryArray.from_arrays(pa.array([0] * 3000, pa.int32()), pa.array([big]))
    table = pa.table({"id": [f"b{i}" for i in range(3000)], "text": text})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    assert len(buffer.getvalue()) < 100_000
    errs = errors_of(buffer.getvalue(), fmt="parquet", max_decoded_bytes=512 * 2**20)
    assert errs == ["rows 1-1000: the file expands to more than 512 MB of data once decompressed, above the "
                    "upload limit; split it into smaller files",
                    "the rest of the file could not be read past this; fix it and upload again"]
    small = pa.table({"id": ["s1", "s2"], "text": pa.array(["short", "short"]).dictionary_encode()})
    buffer = io.BytesIO()
    pq.write_table(small, buffer)
    items, _ = parse_text(buffer.getvalue(), fmt="parquet", max_decoded_bytes=1000)
    assert [i.payload["text"] for i in items] == ["short", "short"]


def test_duplicate_ids_and_empty_text():
    errs = errors_of(b"id,text\n1,a\n1,b\n2,\n")
    assert "line 3, column 'id': id '1' already used on line 2" in errs
    assert "line 4, column 'text': the text is empty" in errs


def test_missing_text_column_lists_the_columns():
    errs = errors_of(b"body,id\nx,1\n")
    assert errs == ["no text column: name it 'text' or choose one of 'body', 'id'"]


def test_duplicated_header_is_refused():
    assert errors_of(b"text,text\na,b\n") == ["line 1: column 'text' appears twice"]


@pytest.mark.parametrize("data,message", [(b"", "the file is empty"), (b"text\n", "the file has no rows to import")])
def test_empty_files(data, message):
    assert errors_of(data) == [message]


def test_tabular_features_are_the_numeric_columns():
    items, parser = parse_all(b"id,a,b,name\nx,1,2.5,foo\ny,3,-4e2,bar\n", kind="tabular", fmt="csv")
    assert parser.plan.feature_columns == ["a", "b"]
    assert items[1].payload == {"features": [3.0, -400.0]}
    assert items[1].meta == {"name": "bar"}


@pytest.mark.parametrize("value,fragment", [("nan", "not a finite number"), ("inf", "not a finite number"),
                                            ("abc", "'abc' is not a number"), ("", "the value is empty")])
def test_tabular_bad_numbers_name_line_and_column(value, fragment):
    errs = errors_of(f"a,b\n1,2\n3,{value}\n".encode(), kind="tabular")
    assert len(errs) == 1 and errs[0].startswith("line 3, column 'b': ") and fragment in errs[0]


def test_tabular_fast_and_careful_conversions_agree():
    # The fast path (all cells convert, finite sum) and the cell-by-cell one must accept the same rows:
    # big finite values whose sum overflows, padded numbers, booleans and integers in JSONL.
    items, _ = parse_all(b"a,b\n1e308,1e308\n -2.5 ,+3\n", kind="tabular", fmt="csv")
    assert [i.payload["features"] for i in items] == [[1e308, 1e308], [-2.5, 3.0]]
    items, _ = parse_all(b'{"a": true, "b": 7}\n', kind="tabular", fmt="jsonl")
    assert items[0].payload == {"features": [1.0, 7.0]}
    errs = errors_of(b'{"a": 1, "b": 2}\n{"a": null, "b": 2}\n{"a": 1, "b": "-inf"}\n', kind="tabular", fmt="jsonl")
    assert errs == ["line 2, column 'a': the value is empty",
                    "line 3, column 'b': '-inf' is not a finite number (NaN and infinity cannot be features)"]


def test_jsonl_one_bad_line_names_it():
    data = b'{"text": "a"}\n{"text": "b"\n\n{"text": "c"}\n[1]\n'
    errs = errors_of(data, fmt="jsonl")
    assert errs[0].startswith("line 2: invalid JSON")
    assert errs[1] == "line 5: expected a JSON object, found list"


def test_jsonl_tabular_and_metadata():
    data = b'{"id": 7, "f1": 1, "f2": 2, "tag": "x"}\n{"id": 8, "f1": 3, "f2": 4.5, "tag": "y"}\n'
    items, parser = parse_all(data, kind="tabular", fmt="jsonl")
    assert [i.external_id for i in items] == ["7", "8"]
    assert items[1].payload == {"features": [3.0, 4.5]} and items[1].meta == {"tag": "y"}


def test_jsonl_text_must_be_a_string():
    errs = errors_of(b'{"text": 12}\n', fmt="jsonl")
    assert errs == ["line 1, column 'text': expected text, found int"]


def test_parquet_round_trip():
    table = pa.table({"id": ["a", "b"], "text": ["one", "two"], "score": [0.5, 0.7]})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    items, _ = parse_text(buffer.getvalue(), fmt="parquet")
    assert [i.payload["text"] for i in items] == ["one", "two"] and items[0].meta == {"score": 0.5}


def test_parquet_garbage_is_refused():
    assert errors_of(b"not parquet at all", fmt="parquet")[0].startswith("not a readable Parquet file")


def test_many_problems_are_capped_with_a_sentence():
    data = "a,b\n" + "".join(f"{i},x\n" for i in range(100))
    errs = errors_of(data.encode(), kind="tabular", feature_columns=["a", "b"])
    assert len(errs) == 21 and errs[-1].startswith("stopped after 20 problems")


def test_named_columns_must_exist():
    errs = errors_of(b"text\nhello\n", id_column="key")
    assert errs == ["column 'key' not in the file; it has 'text'"]


def test_jsonl_records_roundtrip_large():
    lines = "".join(json.dumps({"id": i, "text": f"item {i}"}) + "\n" for i in range(1000))
    items, _ = parse_text(lines.encode(), fmt="jsonl")
    assert len(items) == 1000 and items[-1].external_id == "999"


LABELS = ["fresh", "rotten"]


def test_label_column_gives_labels_and_empty_cells_mean_unlabelled():
    data = b"id,text,label,source\n1,good,fresh,a\n2,meh,,b\n3,bad, rotten ,c\n"
    items, parser = parse_text(data, label_column="label", labels=LABELS)
    assert [i.label for i in items] == ["fresh", None, "rotten"]
    assert parser.plan.label_column == "label" and parser.plan.meta_columns == ["source"]
    assert all("label" not in i.meta for i in items)


def test_without_the_option_a_label_column_stays_metadata():
    items, parser = parse_text(b"text,label\ngood,fresh\n", labels=LABELS)
    assert items[0].label is None and items[0].meta == {"label": "fresh"} and parser.plan.label_column is None


def test_a_value_outside_the_label_set_names_line_and_column():
    errs = errors_of(b"id,text,label\n1,good,fresh\n2,bad,Rotten\n3,ok,\n4,so so,meh\n",
                     label_column="label", labels=LABELS)
    assert len(errs) == 2
    assert errs[0].startswith("line 3, column 'label': 'Rotten' is not a label of this project; use one of 'fresh'")
    assert errs[1].startswith("line 5, column 'label': 'meh' is not a label")


def test_jsonl_and_tabular_labels():
    data = b'{"f1": 1, "y": 0, "tag": "x"}\n{"f1": 2, "y": null}\n{"f1": 3, "y": 1}\n'
    items, parser = parse_all(data, kind="tabular", fmt="jsonl", label_column="y", labels=["0", "1"])
    assert [i.label for i in items] == ["0", None, "1"]
    assert parser.plan.feature_columns == ["f1"]  # numeric labels are never taken for a feature
    assert errors_of(b'{"f1": 1, "y": 2}\n', kind="tabular", fmt="jsonl", label_column="y",
                     labels=["0", "1"])[0].startswith("line 1, column 'y': '2' is not a label")


def test_label_column_must_exist_and_play_no_other_part():
    assert errors_of(b"text\nhello\n", label_column="label", labels=LABELS) == [
        "column 'label' not in the file; it has 'text'"]
    assert errors_of(b"text\nhello\n", label_column="text", labels=LABELS) == [
        "column 'text' cannot be both the label column and the text column"]


def _labelled_project(users, **settings):
    _, token = users.create("boss", "admin")
    api = users.api(token)
    pid = api.post("/api/v1/projects", json={"name": "P", "kind": "text", "labels": LABELS, "batch_size": 10,
                                             **settings}).json()["id"]
    return api, pid


def _import_counts(pid: int) -> tuple[int, int, int, int]:
    from sqlalchemy import func, select

    from app.db import session_scope
    from app.models import Annotation, Item, Job, Project

    with session_scope(write=False) as session:
        items = session.scalar(select(func.count()).select_from(Item).where(Item.project_id == pid))
        answers = session.scalar(select(func.count()).select_from(Annotation).where(Annotation.project_id == pid))
        trains = session.scalar(select(func.count()).select_from(Job).where(Job.project_id == pid, Job.kind == "train"))
        return items, answers, session.get(Project, pid).n_training_labels, trains


def test_import_with_a_bad_label_is_refused_whole(users):
    api, pid = _labelled_project(users)
    # past the first bulk insert (5,000 rows), so labelled rows were already written when the bad one comes
    body = "".join(f"{i},text {i},{LABELS[i % 2] if i % 3 else ''}\n" for i in range(6000))
    data = ("id,text,label\n" + body + "6000,the end,Fresh\n").encode()
    answer = api.post(f"/api/v1/projects/{pid}/items", data={"label_column": "label"},
                      files={"file": ("p.csv", data, "text/csv")})
    assert answer.status_code == 422
    assert answer.json()["errors"] == [
        "line 6002, column 'label': 'Fresh' is not a label of this project; use one of 'fresh', 'rotten' "
        "(or leave the cell empty for no label)"]
    assert _import_counts(pid) == (0, 0, 0, 0)  # no item, no annotation, no counted label, no retrain


def test_import_with_empty_label_cells_leaves_those_items_unlabelled(users):
    from sqlalchemy import select

    from app.db import session_scope
    from app.models import Annotation, Item

    api, pid = _labelled_project(users, holdout_fraction=0.0)
    data = b"id,text,label\na,good,fresh\nb,meh,\nc,bad,rotten\nd,fine,\n"
    answer = api.post(f"/api/v1/projects/{pid}/items", data={"label_column": "label"},
                      files={"file": ("p.csv", data, "text/csv")})
    assert answer.status_code == 201 and answer.json()["imported"] == 4 and answer.json()["labelled"] == 2
    with session_scope(write=False) as session:
        items = {i.external_id: i for i in session.scalars(select(Item).where(Item.project_id == pid))}
        assert {k: (i.final_label, i.n_annotations, i.state) for k, i in items.items()} == {
            "a": ("fresh", 1, "done"), "b": (None, 0, "open"), "c": ("rotten", 1, "done"), "d": (None, 0, "open")}
        sources = session.scalars(select(Annotation.source).where(Annotation.project_id == pid)).all()
        assert sources == ["import", "import"]
    assert _import_counts(pid)[1:] == (2, 2, 0)  # two training labels: below batch_size, no retrain yet
    # the unlabelled items are the ones served; undo does not take back an imported label
    assert api.get(f"/api/v1/projects/{pid}/next").json()["external_id"] in {"b", "d"}
    assert api.post(f"/api/v1/projects/{pid}/undo").status_code == 204
    assert _import_counts(pid)[1:3] == (2, 2)


def test_upload_form_and_cli_take_a_label_column(client, users, tmp_path, capsys):
    from app.cli import main
    from tests.test_pages import login

    api, pid = _labelled_project(users)
    csrf = login(client, "boss")
    assert 'name="label_column"' in client.get(f"/projects/{pid}").text
    assert 'name="embedding_column"' in client.get(f"/projects/{pid}").text
    form = client.post(f"/projects/{pid}/upload", data={"label_column": "label"},
                       files={"file": ("p.csv", b"id,text,label\na,good,fresh\nb,meh,\n", "text/csv")},
                       headers={"X-CSRF-Token": csrf, "HX-Request": "true"})
    assert form.status_code == 200 and "labels: label (1 item labelled)" in form.text
    assert "Start labelling" in form.text  # b is unlabelled
    again = client.post(f"/projects/{pid}/upload", data={"label_column": "label"},
                        files={"file": ("p.csv", b"id,text,label\na,good,fresh\nb,meh,\n", "text/csv")},
                        headers={"X-CSRF-Token": csrf, "HX-Request": "true"})
    assert "labels: label (0 new items labelled)" in again.text
    assert "1 label they brought was already on those items and was not added again." in again.text
    done_pid = api.post("/api/v1/projects", json={"name": "Done", "kind": "text", "labels": LABELS}).json()["id"]
    full = client.post(f"/projects/{done_pid}/upload", data={"label_column": "label"},
                       files={"file": ("f.csv", b"id,text,label\na,good,fresh\nb,meh,rotten\n", "text/csv")},
                       headers={"X-CSRF-Token": csrf, "HX-Request": "true"})
    assert "there is nothing left to label" in full.text and "Start labelling" not in full.text
    # the preview plays the embedding column the form names
    preview = client.post(f"/projects/{done_pid}/upload-preview",
                          data={"filename": "e.csv", "embedding_column": "vec"},
                          files={"head": ("head", b"id,text,vec\nz,hi,\"[1, 2]\"\n", "text/csv")},
                          headers={"X-CSRF-Token": csrf, "HX-Request": "true"})
    assert preview.status_code == 200 and 'vec<br><span class="role role-embedding">' in preview.text
    plain = client.post(f"/projects/{pid}/upload",
                        files={"file": ("q.csv", b"id,text,label\nc,ok,fresh\n", "text/csv")},
                        headers={"X-CSRF-Token": csrf, "HX-Request": "true"})
    assert plain.status_code == 200 and "the <code>label</code> column was kept as metadata" in plain.text
    refused = client.post(f"/projects/{pid}/upload", data={"label_column": "label"},
                          files={"file": ("r.csv", b"id,text,label\nd,ok,meh\n", "text/csv")},
                          headers={"X-CSRF-Token": csrf, "HX-Request": "true"})
    assert refused.status_code == 422 and "line 2, column &#39;label&#39;: &#39;meh&#39; is not a label" in refused.text

    pool = tmp_path / "pool.csv"
    pool.write_text("id,text,label\ne,nice,rotten\nf,so so,\n")
    assert main(["import", str(pid), str(pool), "--label-column", "label", "--user", "boss"]) == 0
    assert "imported 2 items, 1 with a label from column 'label'" in capsys.readouterr().out
    assert main(["import", str(pid), str(pool), "--label-column", "label", "--user", "nobody"]) == 2
    assert _import_counts(pid)[:2] == (5, 2)
    plain = tmp_path / "plain.txt"
    plain.write_text("nice\na new line\n")
    assert main(["import", str(pid), str(plain)]) == 0
    assert capsys.readouterr().out == ("imported 1 item; left out 1 row already in the project "
                                       "(line 1)\n")


def test_ids_already_in_the_project_are_named_in_file_order(users):
    _, token = users.create("boss", "admin")
    api = users.api(token)
    pid = api.post("/api/v1/projects", json={"name": "P", "kind": "text", "labels": ["a", "b"]}).json()["id"]
    data = "id,text\n" + "".join(f"g{i},text {i}\n" for i in range(40))
    assert api.post(f"/api/v1/projects/{pid}/items", files={"file": ("p.csv", data, "text/csv")}).status_code == 201
    other = "id,text\n" + "".join(f"g{i},other text {i}\n" for i in range(40))
    again = api.post(f"/api/v1/projects/{pid}/items", files={"file": ("p.csv", other, "text/csv")})
    assert again.status_code == 422
    assert again.json()["errors"] == ([f"line {i + 2}: id 'g{i}' is already in this project, with another text; "
                                       "give this row an id of its own" for i in range(20)]
                                      + ["and 20 more ids of this file are already in the project"])


def test_tsv_txt_and_json_arrays_are_read_as_their_names_say():
    tsv, _ = parse_all(b"id\ttext\nt1\thello tab\nt2\tworld, with comma\n", kind="text", fmt=detect_format("a.tsv"))
    assert [(i.external_id, i.payload["text"]) for i in tsv] == [("t1", "hello tab"), ("t2", "world, with comma")]
    txt, _ = parse_all(b"just a line of text\n\nanother, with a comma\r\n", kind="text", fmt=detect_format("a.txt"))
    assert [(i.line, i.payload["text"]) for i in txt] == [(1, "just a line of text"), (3, "another, with a comma")]
    array = b'[{"id": "x1", "text": "a", "score": 0.5},\n {"id": "x2", "text": "b"}]'
    items, _ = parse_all(array, kind="text", fmt=detect_format("export.json"))
    assert [(i.external_id, i.payload["text"], i.meta) for i in items] == [("x1", "a", {"score": 0.5}),
                                                                           ("x2", "b", {})]
    lines_named_json, _ = parse_all(b'{"id": "l1", "text": "a"}\n', kind="text", fmt="json")
    assert [i.external_id for i in lines_named_json] == ["l1"]


def test_broken_json_arrays_and_txt_for_tables_are_named():
    assert errors_of(b'[{"id": "x1", "text": "a"}, 5]', fmt="json") == [
        "item 2 of the array: expected a JSON object, found int"]
    broken = errors_of(b'[{"id": "x1", "text": "a"}, {"id": "x2", "text": ]', fmt="json")
    assert broken[0].startswith("item 2 of the array: invalid JSON")
    assert errors_of(b'[{"id": "x1", "text": ""}, {"id": "x1", "text": "b"}]', fmt="json") == [
        "item 1 of the array, column 'text': the text is empty",
        "item 2 of the array, column 'id': id 'x1' already used on item 1 of the array"]
    assert errors_of(b"1,2\n", kind="tabular", fmt="txt")[0].startswith("a .txt file holds one text per line")


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_table_exported_by_labelloop_imports_with_the_same_features(fmt):
    """An item export carries the old project's holdout, n_annotations and adjudicated columns: in the
    new project they are neither features (n_annotations is a number) nor metadata."""
    rows = [{"id": "a", "x": 1.5, "y": 2.0, "label": "p", "holdout": False, "n_annotations": 2,
             "adjudicated": False, "source": "web"},
            {"id": "b", "x": 0.5, "y": 1.0, "label": "q", "holdout": True, "n_annotations": 1,
             "adjudicated": True}]
    if fmt == "csv":
        header = ["id", "x", "y", "label", "holdout", "n_annotations", "adjudicated", "source"]
        data = (",".join(header) + "\n" + "".join(",".join(str(r.get(c, "")) for c in header) + "\n"
                                               for r in rows)).encode()
    else:
        data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    items, parser = parse_all(data, kind="tabular", fmt=fmt, label_column="label", labels=["p", "q"])
    assert parser.plan.feature_columns == ["x", "y"]
    assert parser.plan.left_out == ["holdout", "n_annotations", "adjudicated"]
    assert [(i.payload["features"], i.label, i.meta) for i in items] == [([1.5, 2.0], "p", {"source": "web"}),
                                                                         ([0.5, 1.0], "q", {})]
    # a file that merely has a column of one of these names keeps it
    items, parser = parse_all(b"x,n_annotations\n1,2\n", kind="tabular", fmt="csv")
    assert parser.plan.feature_columns == ["x", "n_annotations"] and parser.plan.left_out == []


def test_a_cell_over_the_size_limit_is_named_as_such():
    """QA: an 11 MB cell without any quote was called broken quotes, in the csv module's words."""
    from app.pool.parsing import MAX_FIELD_BYTES

    body = b"id,text\n1," + b"a" * (MAX_FIELD_BYTES + 10) + b"\n2,fine\n"
    with pytest.raises(UploadError) as refused:
        parse_all(body, kind="text", fmt="csv")
    assert refused.value.errors[0] == (f"line 2: a field is longer than {MAX_FIELD_BYTES:,} characters (the most a "
                                       "cell may hold), or an opening quote is never closed; the file could not "
                                       "be read past it")


def test_nested_metadata_is_exported_to_csv_as_json():
    from app.dashboard.export import as_csv

    text = "".join(as_csv(iter([{"id": "1", "extra": {"a": [1, 2]}, "tags": ["x"]}]), ["id", "extra", "tags"]))
    assert text.splitlines()[1] == '1,"{""a"": [1, 2]}","[""x""]"'


def test_a_csv_apart_by_semicolons_is_read_as_excel_writes_it():
    """QA: Excel in most European locales writes CSV with semicolons; it was not recognised."""
    items, _ = parse_all(b"id;text;score\nx1;hello, world;0,5\nx2;bye;1\n", kind="text", fmt="csv")
    assert [(i.external_id, i.payload["text"], i.meta) for i in items] == [
        ("x1", "hello, world", {"score": "0,5"}), ("x2", "bye", {"score": "1"})]
    # a header with a comma stays comma-separated, semicolons in its cells and all
    items, _ = parse_all(b"id,text\nx1,a;b\n", kind="text", fmt="csv")
    assert [(i.external_id, i.payload["text"]) for i in items] == [("x1", "a;b")]


def test_a_row_number_or_key_column_is_not_taken_as_a_feature_unless_named():
    """QA: a file's row_id (0, 1, 2, ...) became a model feature by itself."""
    body = b"row_id,Unnamed: 0,x1,customer_id,x2\n0,0,1.5,77,2\n1,1,2.5,78,3\n"
    _, parser = parse_all(body, kind="tabular", fmt="csv")
    assert parser.plan.feature_columns == ["x1", "x2"]
    assert parser.plan.meta_columns == ["row_id", "Unnamed: 0", "customer_id"]
    _, named = parse_all(body, kind="tabular", fmt="csv", feature_columns=["row_id", "x1"])
    assert named.plan.feature_columns == ["row_id", "x1"]
    # a column named like the answer neither (QA: a 0/1 target was a feature; README says label never is)
    _, answers = parse_all(b"x1,label,target,Class,y\n1,0,1,2,5\n", kind="tabular", fmt="csv")
    assert answers.plan.feature_columns == ["x1", "y"]
    assert answers.plan.meta_columns == ["label", "target", "Class"]


def test_prodigy_answers_and_label_studio_exports_come_in_as_their_tools_meant():
    """QA: Prodigy's rejected and ignored answers became positive labels; a Label Studio export could
    not be read at all."""
    labels = ["POSITIVE", "NEGATIVE"]
    prodigy = "\n".join(json.dumps(r) for r in [
        {"text": "I loved it", "label": "POSITIVE", "_input_hash": 1, "_task_hash": 2, "answer": "accept"},
        {"text": "Dreadful film", "label": "POSITIVE", "_input_hash": 3, "_task_hash": 4, "answer": "reject"},
        {"text": "Not sure", "label": "POSITIVE", "_input_hash": 5, "_task_hash": 6, "answer": "ignore"},
    ]).encode()
    items, parser = parse_all(prodigy, kind="text", fmt="jsonl", label_column="label", labels=labels)
    assert [(i.payload["text"], i.label) for i in items] == [
        ("I loved it", "POSITIVE"), ("Dreadful film", None), ("Not sure", None)]
    assert parser.not_accepted == 2
    choice = json.dumps({"text": "Choice style", "options": [{"id": "NEGATIVE"}], "accept": ["NEGATIVE"],
                         "_input_hash": 7, "_task_hash": 8, "answer": "accept"}).encode()
    items, _ = parse_all(choice, kind="text", fmt="jsonl", label_column="accept", labels=labels)
    assert [i.label for i in items] == ["NEGATIVE"]
    studio = json.dumps([
        {"id": 1, "data": {"text": "Great acting"},
         "annotations": [{"was_cancelled": True, "result": [{"value": {"choices": ["NEGATIVE"]}}]},
                         {"result": [{"value": {"choices": ["POSITIVE"]}, "type": "choices"}]}]},
        {"id": 2, "data": {"text": "Not annotated yet", "source": "web"}, "annotations": []},
    ]).encode()
    items, _ = parse_all(studio, kind="text", fmt="json", label_column="label", labels=labels)
    assert [(i.external_id, i.payload["text"], i.label, i.meta) for i in items] == [
        ("1", "Great acting", "POSITIVE", {}), ("2", "Not annotated yet", None, {"source": "web"})]


def test_json_syntax_errors_name_their_place_in_a_sentence():
    """QA: a JSONL problem at the end of a line was put at column 1; a JSON array cut short got yajl's
    multi-line arrow drawing."""
    with pytest.raises(UploadError) as refused:
        parse_all(b'{"id": 1, "text": "a"}\n{"id":2,"text":"b"\n', kind="text", fmt="jsonl")
    assert refused.value.errors[0] == "line 2: invalid JSON (Expecting ',' delimiter at column 19)"
    with pytest.raises(UploadError) as refused:
        parse_all(b'[{"id":1,"text":"a"},{"id":2,"text":"b"},', kind="text", fmt="json")
    assert refused.value.errors[0] == ("the file ends inside item 3 of the array, before the array is closed (a file "
                                       "cut short?)")
    assert all("\n" not in e for e in refused.value.errors)


def test_a_file_with_no_feature_column_gets_one_sentence_not_a_count_of_problems():
    """QA: "stopped after 20 problems" followed the one problem found."""
    assert errors_of(b"x1,x2\na,b\nc,d\n", kind="tabular") == [
        "no numeric feature columns found in the first row; name the feature columns"]
