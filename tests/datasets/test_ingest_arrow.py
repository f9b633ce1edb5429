"""The pyarrow reader and the per-distinct-cell typing give what the cell-by-cell pandas ingest gave (the oracle in
``ingest_before``): the same frame, column types, notes and sentences, on the shared datasets and on messy files."""

from __future__ import annotations

import io
import random
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from datasets.arrow_csv import arrow_cells_read, lone_carriage_return
from datasets.ingest import PARQUET_SCHEMA_ROWS, csv_ingest, frame_parquet, frame_profile
from datasets.services import label_values_count
from explainer_site.exceptions import ApplicationError
from tests.datasets.ingest_before import csv_ingest_before
from tests.stack import DATASETS_DIR

LIMITS = {"max_rows": 10**7, "max_columns": 5000}


def outcome(ingest, path: Path, **limits) -> dict:
    """What the user sees of an ingest: the table, its types and notes, or the sentence that refused it."""
    try:
        table = ingest(path, filename=path.name, **{**LIMITS, **limits})
    except ApplicationError as exc:
        return {"error": exc.message}
    return {"frame": table.frame, "kinds": table.kinds, "notes": table.notes, "encoding": table.encoding,
            "delimiter": table.delimiter, "profile": frame_profile(table.frame, table.kinds, table.distinct),
            "label_values": label_values_count(table.frame, table.distinct), "parquet": frame_parquet(table)}


def assert_same_as_before(path: Path, **limits) -> dict:
    new, old = outcome(csv_ingest, path, **limits), outcome(csv_ingest_before, path, **limits)
    assert new.keys() == old.keys(), (new.get("error"), old.get("error"))
    if "error" in old:
        assert new["error"] == old["error"]
        return new
    pd.testing.assert_frame_equal(new["frame"], old["frame"], check_exact=True)
    new_parquet, old_parquet = io.BytesIO(new.pop("parquet")), io.BytesIO(old.pop("parquet"))
    assert pq.read_schema(new_parquet).equals(pq.read_schema(old_parquet), check_metadata=True)
    pd.testing.assert_frame_equal(pd.read_parquet(new_parquet), pd.read_parquet(old_parquet), check_exact=True)
    assert [type(v) for v in new["frame"].iloc[:, 0]] == [type(v) for v in old["frame"].iloc[:, 0]]
    assert {k: v for k, v in new.items() if k != "frame"} == {k: v for k, v in old.items() if k != "frame"}
    return new


def arrow_reads(path: Path, delimiter: str = ",") -> bool:
    n_columns = len(pd.read_csv(path, sep=delimiter, nrows=0).columns)
    return arrow_cells_read(path, n_columns=n_columns, delimiter=delimiter, encoding="utf-8") is not None


@pytest.mark.parametrize("name", ["adult.csv", "heart.csv", "zoo.csv", "sms_spam.csv"])
def test_shared_datasets_read_by_pyarrow_as_before(name):
    path = DATASETS_DIR / name
    assert arrow_reads(path), f"{name} should take the pyarrow path"
    table = assert_same_as_before(path)
    assert len(table["frame"]) > 100


def test_mnist_pixels_as_before(tmp_path):
    """785 columns: the first 50 rows of the MNIST sample (the cost is per column)."""
    lines = (DATASETS_DIR / "mnist_5k.csv").read_bytes().splitlines(keepends=True)
    path = tmp_path / "mnist_50.csv"
    path.write_bytes(b"".join(lines[:51]))
    assert arrow_reads(path)
    table = assert_same_as_before(path)
    assert table["frame"].shape == (50, 785) and set(table["kinds"].values()) == {"numeric"}


def write(tmp_path: Path, text: str | bytes, name: str = "messy.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


MESSY = {
    "quoted_newlines": 'id,note,y\n1,"two\nlines",a\n2,"crlf\r\ninside",b\n3,"say ""hi""",a\n4,plain,b\n',
    "mixed_types": "x,y,z\n" + "".join(f"{i if i % 30 else 'oops'},{i % 3},{'1,234' if i % 2 else '5'}\n" for i in range(200)),
    "thousands_kept_apart": 'a,b\n"1,234",x\n"12,345.5",y\n7,x\n?,y\n',
    "empty_lines": "a,b\n\n1,2\n\n\n3,4\n\n",
    "crlf_and_blank_lines": "a,b\r\n\r\n1,x\r\n2,y\r\n",
    "trailing_separators": "a,b,c\n1,2,x,\n3,4,y,\n",
    "trailing_separators_header_too": "a,b,c,\n1,2,x,\n3,4,y,\n",
    "trailing_separator_with_value": "a,b,\n1,2,\n3,4,5\n",
    "whitespace_only_line": "a,b\n1,2\n   \n3,4\n",
    "short_rows": "a,b,c\n1,2\n3,4,5\n",
    "long_row": "a,b\n1,2\n3,4,5\n",
    "unclosed_quote_at_end": 'a,b\n1,2\n3,"four\n',
    "unclosed_quote_in_middle": 'a,b\n1,"2\n3,4\n',
    "lone_carriage_returns": "a,b\r1,2\r\r,x\r3,4\r",
    "quote_after_space": 'a,b\n "x,y",2\n',
    "quoted_header": 'id,"two\nline name",y\n1,2,3\n4,5,6\n',
    "duplicate_and_empty_headers": "a,a,,b\n1,2,3,4\n5,6,7,8\n",
    "placeholders_and_spaces": "a, b ,c\n ?, x ,NA\nn/a,y,1\n-, x ,2\n",
    "infinities_and_huge_numbers": "a,b\ninf,1\n-inf,2\n1e309,3\n12345678901234567890,4\n9007199254740993,5\n",
    "all_empty_column": "a,b,c\n1,,x\n2,,y\n3,?,z\n",
    "semicolons": "a;b;c\n1,5;x;2\n3,5;y;4\n",
    "tabs": "a\tb\n1\tx\n2\ty\n",
    "bom": "\ufeffa,b\n1,x\n2,y\n",
    "header_only": "a,b\n",
    "one_column": "a\n1\n2\n",
    "free_text": "text,label\n" + "".join(f"this is message number {i} and it is long enough,{i % 2}\n" for i in range(50)),
    "unicode_spaces": "a,b\n\u00a0x\u00a0,1\n\u2003y,2\n\x1fz,3\n",
}


@pytest.mark.parametrize("case", sorted(MESSY))
def test_messy_files_as_before(tmp_path, case):
    assert_same_as_before(write(tmp_path, MESSY[case]))


def test_thousands_of_columns_as_before(tmp_path):
    rng = np.random.default_rng(0)
    names = [f"f{i}" for i in range(2000)]  # the server's default limit
    rows = [",".join(str(v) for v in rng.integers(0, 5, size=2000)) for _ in range(8)]
    rows[3] = ",".join(["?"] + ["x"] * 1999)
    path = write(tmp_path, ",".join(names) + "\n" + "\n".join(rows) + "\n")
    assert arrow_reads(path)
    table = assert_same_as_before(path)
    assert table["frame"].shape == (8, 2000)


def test_encodings_and_bytes_past_the_head_as_before(tmp_path):
    body = "name,city\n" + "plain,x\n" * 40_000  # past the 256 KiB the encoding is guessed from
    cp1252 = write(tmp_path, (body + "Zoë,Köln\n").encode("cp1252"), "cp1252.csv")
    assert arrow_cells_read(cp1252, n_columns=2, delimiter=",", encoding="utf-8") is None  # pyarrow refuses it
    assert "Windows-1252" in assert_same_as_before(cp1252)["notes"][0]
    assert_same_as_before(write(tmp_path, "a,b\nZoë,1\n".encode("cp1252"), "latin.csv"))
    assert_same_as_before(write(tmp_path, "a,b\n1,x\n".encode("utf-16"), "utf16.csv"))
    assert_same_as_before(write(tmp_path, "\ufeffa;b\n1;é\n".encode(), "bom.csv"))


def test_row_limit_as_before(tmp_path):
    path = write(tmp_path, "a,b\n" + "1,2\n" * 50)
    assert "more than 49 rows" in assert_same_as_before(path, max_rows=49)["error"]
    assert len(assert_same_as_before(path, max_rows=50)["frame"]) == 50


def test_what_pyarrow_refuses_is_left_to_pandas(tmp_path):
    """Each of these is read by pandas (None here) and the ingest still gives today's result."""
    for case, n_columns in (("trailing_separators", 3), ("whitespace_only_line", 2), ("short_rows", 3),
                            ("unclosed_quote_at_end", 2), ("lone_carriage_returns", 2), ("quote_after_space", 2)):
        path = write(tmp_path, MESSY[case], f"{case}.csv")
        assert arrow_cells_read(path, n_columns=n_columns, delimiter=",", encoding="utf-8") is None, case
    assert arrow_cells_read(write(tmp_path, MESSY["empty_lines"]), n_columns=2, delimiter=",", encoding="utf-8")
    assert lone_carriage_return(write(tmp_path, "a,b\r\n1,2\r", "cr.csv"))
    assert not lone_carriage_return(write(tmp_path, "a,b\r\n1,2\r\n", "crlf.csv"))


def test_carriage_return_at_a_chunk_edge(tmp_path):
    chunk = 1 << 20
    crlf = write(tmp_path, b"a,b\n" + b"x" * (chunk - 5) + b"\r\n1,2\r\n", "edge_crlf.csv")
    lone = write(tmp_path, b"a,b\n" + b"x" * (chunk - 5) + b"\r1,2\n", "edge_cr.csv")
    assert crlf.read_bytes()[chunk - 1:chunk + 1] == b"\r\n"
    assert not lone_carriage_return(crlf) and lone_carriage_return(lone)


def pandas_cells(data: bytes, n: int, delimiter: str):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame = pd.read_csv(io.BytesIO(data), sep=delimiter, names=[f"c{i}" for i in range(n)], header=0, dtype=str,
                                keep_default_na=False, skip_blank_lines=True, on_bad_lines="error", engine="c",
                                index_col=False)
    except (pd.errors.ParserError, ValueError):
        return None
    return [[None if isinstance(v, float) else v for v in frame[c]] for c in frame.columns]


FIELDS = ["", "a", " a ", '"a,b"', '"x""y"', '"multi\nline"', '"m\r\nl"', 'a"b', '"a"b', ' "a"', '"a" ', '""', "?",
          "é", '"a;b"', '"', '"""', "x\t", "1,5", "12"]


def test_pyarrow_cells_equal_pandas_cells_on_random_files(tmp_path):
    """Random rows of quoted, doubled, multi-line and broken fields: wherever pyarrow reads a file, every cell equals
    pandas'; and it reads a good share of them (else this test would prove nothing)."""
    rng = random.Random(7)
    read = 0
    for index in range(600):
        delimiter = rng.choice([",", ",", ";", "\t", "|"])
        n = rng.choice([2, 3, 4])
        eol = rng.choice(["\n", "\r\n", "\r"]) if rng.random() < 0.1 else rng.choice(["\n", "\r\n"])
        text = delimiter.join(f"h{j}" for j in range(n)) + eol
        for _ in range(rng.randint(0, 6)):
            if rng.random() < 0.1:
                text += rng.choice(["", " ", "\t"]) + eol
                continue
            text += delimiter.join(rng.choice(FIELDS).replace(",", delimiter if rng.random() < 0.5 else ",")
                                   for _ in range(n)) + (eol if rng.random() < 0.9 else "")
        if rng.random() < 0.3:
            cut = rng.randint(0, len(text))
            text = text[:cut] + rng.choice(['"', delimiter, "\n", "\r", " ", ""]) + text[cut + 1:]
        path = write(tmp_path, text, f"random_{index}.csv")
        cells = arrow_cells_read(path, n_columns=n, delimiter=delimiter, encoding="utf-8")
        if cells is None:
            continue
        read += 1
        expected = pandas_cells(path.read_bytes(), n, delimiter)
        got = [[None if code < 0 else column.uniques[code] for code in column.codes] for column in cells]
        assert got == expected, repr(text)
    assert read > 150


def test_random_typed_tables_as_before(tmp_path):
    """Columns mixing numbers, thousands, placeholders, spaces and words, at random proportions."""
    rng = random.Random(3)
    pool = ["1", " 2", "3.5", "-4", "1,234", "12,345.6", "?", "NA", " none ", "", "inf", "x", " word ", "1e3", "0x1f",
            "long free text that goes on and on", "Ünï", "--", "#N/A"]
    for index in range(40):
        n_rows, n_cols = rng.randint(1, 60), rng.randint(2, 5)
        weights = [[rng.random() ** 3 for _ in pool] for _ in range(n_cols)]
        rows = [",".join(f'"{v}"' if "," in v else v for v in (rng.choices(pool, weights[c])[0] for c in range(n_cols)))
                for _ in range(n_rows)]
        path = write(tmp_path, ",".join(f"c{c}" for c in range(n_cols)) + "\n" + "\n".join(rows) + "\n", f"t{index}.csv")
        assert_same_as_before(path)


def test_parquet_of_a_column_empty_in_its_first_rows(tmp_path):
    """The Parquet schema is read from the first rows; a column with no value there is written by pandas instead."""
    rows = ["1,"] * (PARQUET_SCHEMA_ROWS + 5) + ["2,late words"]
    table = assert_same_as_before(write(tmp_path, "a,b\n" + "\n".join(rows) + "\n"))
    assert table["frame"]["b"].iloc[-1] == "late words"


def test_parquet_is_written_from_the_ingested_columns(monkeypatch):
    """The fast path is the one taken for a real file: pandas' conversion of the frame is never called."""
    table = csv_ingest(DATASETS_DIR / "adult.csv", filename="adult.csv", **LIMITS)

    def refused(*args, **kwargs):
        raise AssertionError("to_parquet called")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", refused)
    frame = pd.read_parquet(io.BytesIO(frame_parquet(table)))
    assert frame.shape == (32561, 15) and frame["workclass"].isna().sum() == 1836
