"""The pool parser: good files in every format, and every broken one named by line and column."""

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from app.pool.parsing import UploadError, parse_all


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


def test_broken_quoting_names_the_line():
    errs = errors_of(b'text\n"fine"\n"broken " quote"\n')
    assert errs[0].startswith("line 3: broken CSV")


def test_wrong_field_count_names_the_line():
    errs = errors_of(b"id,text\n1,a\n2,b,extra\n3,c\n")
    assert errs == ["line 3: expected 2 fields, found 3"]


def test_line_numbers_count_multiline_fields():
    errs = errors_of(b'id,text\n1,"two\nlines"\n2,b,extra\n')
    assert errs == ["line 4: expected 2 fields, found 3"]


def test_invalid_utf8_names_the_line():
    errs = errors_of(b"text\nok\ncaf\xe9\n")
    assert errs[0].startswith("line 3: not valid UTF-8")


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
