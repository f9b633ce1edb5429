"""Reading real, messy CSVs: what is cleaned, what is refused, and how it is said."""

from pathlib import Path

import numpy as np
import pytest

from datasets.ingest import csv_ingest, csv_text, frame_profile
from explainer_site.exceptions import ApplicationError

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


def ingest(path: Path, **kwargs):
    return csv_ingest(path, filename=path.name, max_rows=kwargs.get("max_rows", 10**7), max_columns=kwargs.get("max_columns", 5000))


def test_adult_spaces_and_question_marks_are_cleaned_and_reported():
    table = ingest(SHARED / "adult.csv")
    frame = table.frame
    assert frame.shape == (32561, 15)
    assert frame["workclass"].iloc[0] == "State-gov"  # leading space stripped
    assert set(frame["income"].dropna()) == {"<=50K", ">50K"}
    assert frame["workclass"].isna().sum() == 1836
    assert frame["occupation"].isna().sum() == 1843
    assert frame["native-country"].isna().sum() == 583
    assert table.kinds["age"] == "numeric" and table.kinds["workclass"] == "categorical"
    notes = " ".join(table.notes)
    assert "Stripped" in notes and "workclass" in notes and "'?'" in notes


def test_heart_question_marks_become_missing_numbers():
    table = ingest(SHARED / "heart.csv")
    assert table.kinds["ca"] == "numeric" and table.kinds["thal"] == "numeric"
    assert table.frame["ca"].isna().sum() == 4 and table.frame["thal"].isna().sum() == 2
    profile = {c["name"]: c for c in frame_profile(table.frame, table.kinds)}
    assert profile["ca"]["n_missing"] == 4 and profile["num"]["n_unique"] == 5


def test_zoo_crlf_line_endings_leave_no_carriage_returns():
    table = ingest(SHARED / "zoo.csv")
    assert table.frame.shape == (101, 18)
    assert list(table.frame.columns)[-1] == "class_type"
    assert table.kinds["class_type"] == "numeric"
    assert not any("\r" in str(v) for v in table.frame["animal_name"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"a,b,c\n", "no data rows"),
        (b"only\n1\n2\n", "only one column"),
        (b"\x89PNG\r\n\x1a\n\x00\x00binary", "PNG"),
        (b"PK\x03\x04zipzipzip", "ZIP"),
        (b"a,b\n1,2\n3,4,5,6\n", "same number of fields"),
        (b"\x00\x01\x02\x03binary\x00stuff", "binary"),
    ],
)
def test_unreadable_files_are_refused_with_a_sentence(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(ApplicationError) as error:
        ingest(path)
    assert message.lower() in error.value.message.lower()


def test_semicolons_latin1_and_bom_are_read(tmp_path):
    path = tmp_path / "fr.csv"
    path.write_bytes("ville;température;classe\nMâcon;12,5;a\nSète;18,0;b\n".encode("cp1252"))
    table = ingest(path)
    assert list(table.frame.columns) == ["ville", "température", "classe"]
    assert table.frame["ville"].tolist() == ["Mâcon", "Sète"]
    assert any("semicolons" in n for n in table.notes) and any("Windows-1252" in n for n in table.notes)

    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbfx,y\n1,a\n2,b\n")
    table = ingest(bom)
    assert list(table.frame.columns) == ["x", "y"]


def test_duplicate_and_empty_headers_are_renamed(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("a,a,,label\n1,2,3,x\n4,5,6,y\n")
    table = ingest(path)
    assert list(table.frame.columns) == ["a", "a_2", "column_3", "label"]
    assert any("Renamed" in n for n in table.notes)


def test_infinities_and_thousands_separators(tmp_path):
    path = tmp_path / "n.csv"
    path.write_text('amount,ratio,label\n"1,234",inf,a\n"2,500",0.5,b\n"12",-inf,a\n')
    table = ingest(path)
    assert table.frame["amount"].tolist() == [1234.0, 2500.0, 12.0]
    assert np.isnan(table.frame["ratio"].iloc[0]) and np.isnan(table.frame["ratio"].iloc[2])


def test_row_and_column_limits(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text(",".join(f"c{i}" for i in range(50)) + "\n" + ",".join("1" for _ in range(50)) + "\n")
    with pytest.raises(ApplicationError, match="accepts at most 10"):
        ingest(path, max_columns=10)
    with pytest.raises(ApplicationError, match="more than 0 rows"):
        ingest(path, max_rows=0)


def test_exported_csv_escapes_formulas():
    import pandas as pd

    text = csv_text(pd.DataFrame({"a": ["=SUM(A1)", "@cmd", "-3", "plain"]}))
    assert "'=SUM(A1)" in text and "'@cmd" in text and "\n-3\n" in text


def test_rows_that_all_end_with_a_separator_keep_their_columns(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("id,age,city\n1,34,Oslo,\n2,51,Bergen,\n3,29,Tromsø,\n")
    table = csv_ingest(path, filename="export.csv", max_rows=100, max_columns=10)
    assert list(table.frame.columns) == ["id", "age", "city"]
    assert table.frame["city"].tolist() == ["Oslo", "Bergen", "Tromsø"]
    assert table.frame["id"].tolist() == [1, 2, 3]
    assert any("ended with a separator" in note for note in table.notes)


def test_a_surplus_field_with_values_is_refused_not_shifted(tmp_path):
    path = tmp_path / "shifted.csv"
    path.write_text("age,city\n34,Oslo,x\n51,Bergen,\n")
    with pytest.raises(ApplicationError, match="more fields than the header has names"):
        csv_ingest(path, filename="shifted.csv", max_rows=100, max_columns=10)
