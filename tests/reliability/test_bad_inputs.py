"""The bad-input corpus: every file or request a user can get wrong answers 400/413 with a sentence naming the
problem (never a 500) and leaves nothing behind; files that are merely messy are read and the user told what
was cleaned. Files are generated here (see ``corpus.py``); everything runs in-process through the API and pages.
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from datasets.models import Dataset
from datasets.uploads import SizeLimitUploadHandler
from explanations.models import Job
from tests.reliability import corpus
from tests.unit_fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db

FAST = {"lime": {"num_samples": 200}}


@pytest.fixture(autouse=True)
def media(settings, tmp_path) -> Path:
    """A media root of this test's own, so "nothing was left behind" can be checked by listing it."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def media_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def upload_api(api, name: str, content: bytes):
    return api.post("/api/datasets/", {"file": SimpleUploadedFile(name, content, content_type="text/csv")},
                    format="multipart")


# ---------------------------------------------------------------- files we refuse


@dataclass(frozen=True)
class Refused:
    id: str
    content: Callable[[], bytes]
    message: str  # a fragment of the sentence the user sees
    settings: tuple[tuple[str, int], ...] = ()
    status: int = 400


REFUSED = [
    Refused("empty", lambda: b"", "is empty"),
    Refused("blank-lines-only", lambda: b"\n  \r\n\n", "is empty"),
    Refused("header-only", lambda: b"name,age,label\n", "header but no data rows"),
    Refused("one-column", lambda: b"x\n1\n2\n3\n", "only one column"),
    Refused("label-is-the-only-column", lambda: b"label\nyes\nno\nyes\nno\n", "only one column"),
    Refused("png", corpus.png, "PNG image"),
    Refused("zip-of-a-csv", corpus.zip_of_csv, "is a ZIP holding data.csv, not images. Unzip it and upload the CSV"),
    Refused("zip-without-images", corpus.zip_of_text, "needs at least two class folders with images"),
    Refused("gzip", corpus.gzip_of_csv, "gzip archive"),
    Refused("pdf", lambda: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "PDF document"),
    Refused("old-excel", lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, "old Excel"),
    Refused("sqlite", lambda: b"SQLite format 3\x00" + b"\x00" * 64, "SQLite database"),
    Refused("elf-program", lambda: b"\x7fELF\x02\x01\x01" + b"\x00" * 64, "program"),
    Refused("random-binary", corpus.random_binary, "binary data"),
    Refused("ragged-rows", corpus.ragged, "Expected 5 fields in line 4, saw 7"),
    # Past the sniffed head a NUL reached text cells, which PostgreSQL refuses at save time (a 500).
    Refused("nul-past-the-head", lambda: corpus.clean_csv() + b"person_z,40,Leeds,1.0,yes\n" * 30_000
            + b"person_n,41,Le\x00eds,1.0,no\n",
            "contains binary data (a NUL byte)"),
    Refused("unclosed-quote", lambda: corpus.clean_csv() + b'"person_x,33,Leeds,1.0,yes\nperson_y,1,2,3,no\n',
            "EOF inside string"),
    Refused("10000-columns", lambda: corpus.wide(10_000), "10,000 columns; this server accepts at most 2,000"),
    Refused("columns-over-setting", corpus.clean_csv, "accepts at most 4", (("EXPLAINER_MAX_COLUMNS", 4),)),
    Refused("rows-over-setting", corpus.clean_csv, "more than 50 rows", (("EXPLAINER_MAX_ROWS", 50),)),
]


@pytest.mark.parametrize("case", REFUSED, ids=[c.id for c in REFUSED])
def test_refused_upload_names_the_problem_and_saves_nothing(api, settings, media, case: Refused):
    for name, value in case.settings:
        setattr(settings, name, value)
    response = upload_api(api, f"{case.id}.csv", case.content())
    assert response.status_code == case.status, response.content
    error = response.json()["error"]
    assert case.message in error, error
    assert f"{case.id}.csv" in error or case.id in ("ragged-rows", "unclosed-quote") or "“" in error
    assert "C error" not in error and "tokenizing" not in error, error  # pandas' internals, not the user's file
    assert not Dataset.objects.exists() and media_files(media) == []


def test_pickle_upload_is_refused_and_never_unpickled(api, media, tmp_path):
    marker = tmp_path / "unpickled"
    response = upload_api(api, "model.pkl", corpus.pickle_bomb(str(marker)))
    assert response.status_code == 400 and "pickle" in response.json()["error"]
    assert not marker.exists() and not Dataset.objects.exists() and media_files(media) == []


def test_missing_file_field_says_which_field(api):
    response = api.post("/api/datasets/", {"name": "no file"}, format="multipart")
    assert response.status_code == 400 and "“file”" in response.json()["error"]


@pytest.mark.parametrize("excess", [10 * 1024, 3 * 1024 * 1024], ids=["just-over", "far-over"])
def test_over_the_size_limit_is_refused_while_streaming(api, settings, media, monkeypatch, excess: int):
    settings.EXPLAINER_MAX_UPLOAD_MB = 1
    limit = 1024 * 1024
    received: list[int] = []
    original = SizeLimitUploadHandler.receive_data_chunk

    def counting(self, raw_data: bytes, start: int) -> bytes:
        received.append(len(raw_data))
        return original(self, raw_data, start)

    monkeypatch.setattr(SizeLimitUploadHandler, "receive_data_chunk", counting)
    body = corpus.clean_csv()
    content = body * ((limit + excess) // len(body) + 1)
    response = upload_api(api, "big.csv", content)
    assert response.status_code == 413
    assert "larger than 1 MB" in response.json()["error"]
    if excess > 64 * 1024:  # the declared length is over: refused before a byte of the file is kept
        assert sum(received) == 0
    else:  # counted while streaming: stopped at the first chunk past the limit
        assert limit < sum(received) <= limit + 64 * 1024
    assert not Dataset.objects.exists() and media_files(media) == []


# ---------------------------------------------------------------- messy files we read, saying what we cleaned


def latin1() -> bytes:
    rows = corpus.table_rows()
    rows[0][2], rows[1][2] = "Málaga", "München"
    return corpus.csv_text(rows=rows).encode("latin-1")


def cp1252_undefined_byte() -> bytes:
    return latin1().replace("München".encode("latin-1"), b"M\x81nchen")  # 0x81: no character in Windows-1252


def utf16_bom() -> bytes:
    return codecs.BOM_UTF16_LE + corpus.csv_text().encode("utf-16-le")


def utf16_no_bom() -> bytes:
    return corpus.csv_text().encode("utf-16-le")


def utf32_bom(bom: bytes, codec: str):
    """UTF-32 little-endian's mark begins with UTF-16's (FF FE): read as UTF-16 its names held NUL characters."""
    return lambda: bom + corpus.csv_text().encode(codec)


def uci_adult_style() -> bytes:
    rows = corpus.table_rows()
    for i in (2, 7, 11):
        rows[i][2] = "?"
    return corpus.csv_text(rows=rows, sep=", ").encode()


def infinities() -> bytes:
    rows = corpus.table_rows()
    rows[0][3], rows[1][3] = "inf", "-inf"
    return corpus.csv_text(rows=rows).encode()


def thousands() -> bytes:
    rows = corpus.table_rows()
    for i, row in enumerate(rows):
        row[3] = f'"{1_234_567 + i * 1000:,}"'
    return corpus.csv_text(rows=rows).encode()


def numbers_with_text() -> bytes:
    rows = corpus.table_rows()
    rows[4][1], rows[8][1] = "unknown", "twelve"
    return corpus.csv_text(rows=rows).encode()


def long_cell() -> bytes:
    rows = corpus.table_rows()
    rows[0][0] = "x" * 200_000
    return corpus.csv_text(rows=rows).encode()


def duplicate_and_empty_names() -> bytes:
    return corpus.csv_text(["name", "age", "", "age", "label"]).encode()


def all_missing_and_constant() -> bytes:
    rows = corpus.table_rows()
    return corpus.csv_text([*corpus.HEADER, "nothing", "always"], [[*r, "", "same"] for r in rows]).encode()


@dataclass(frozen=True)
class Accepted:
    id: str
    content: Callable[[], bytes]
    note: str  # a fragment of one cleaning note ("" when the file needs none)
    check: Callable[[dict], bool] = lambda body: True


def column(body: dict, name: str) -> dict:
    return next(c for c in body["columns"] if c["name"] == name)


def cells(body: dict) -> list[str]:
    return [cell for row in Dataset.objects.get(pk=body["id"]).preview for cell in row]


ACCEPTED = [
    Accepted("latin-1", latin1, "read as Windows-1252", lambda b: "München" in cells(b) and "Málaga" in cells(b)),
    Accepted("not-windows-1252", cp1252_undefined_byte, "read as ISO-8859-1", lambda b: b["n_rows"] == 60),
    Accepted("utf-16-bom", utf16_bom, "UTF-16", lambda b: b["n_columns"] == 5 and column(b, "age")["dtype"] == "numeric"),
    Accepted("utf-16-no-bom", utf16_no_bom, "without a byte-order mark", lambda b: b["n_rows"] == 60),
    Accepted("utf-32-le-bom", utf32_bom(codecs.BOM_UTF32_LE, "utf-32-le"), "UTF-32",
             lambda b: b["columns"][0]["name"] == "name" and b["n_rows"] == 60 and column(b, "age")["dtype"] == "numeric"),
    Accepted("utf-32-be-bom", utf32_bom(codecs.BOM_UTF32_BE, "utf-32-be"), "UTF-32",
             lambda b: b["columns"][0]["name"] == "name" and b["n_rows"] == 60),
    Accepted("utf-8-bom", lambda: codecs.BOM_UTF8 + corpus.clean_csv(), "byte-order mark",
             lambda b: b["columns"][0]["name"] == "name"),
    Accepted("semicolons", lambda: corpus.csv_text(sep=";").encode(), "semicolons", lambda b: b["n_columns"] == 5),
    Accepted("tabs", lambda: corpus.csv_text(sep="\t").encode(), "tabs", lambda b: b["n_columns"] == 5),
    Accepted("vertical-bars", lambda: corpus.csv_text(sep="|").encode(), "vertical bars", lambda b: b["n_columns"] == 5),
    Accepted("crlf", lambda: corpus.csv_text(newline="\r\n").encode(), "",
             lambda b: not any("\r" in c for c in cells(b)) and b["n_rows"] == 60),
    Accepted("quoted-newlines", corpus.quoted_newlines, "",
             lambda b: b["n_rows"] == 60 and "Leeds\nWest Yorkshire" in cells(b)),
    Accepted("question-marks-and-spaces", uci_adult_style, "placeholder values as missing",
             lambda b: column(b, "city")["n_missing"] == 3 and any("Stripped" in n for n in b["cleaning_notes"])),
    Accepted("inf", infinities, "infinite", lambda b: column(b, "income")["dtype"] == "numeric"),
    Accepted("thousands-separators", thousands, "",
             lambda b: column(b, "income")["dtype"] == "numeric" and column(b, "income")["examples"][0] == "1234567"),
    Accepted("numbers-with-text-cells", numbers_with_text, "age (2 cells)", lambda b: column(b, "age")["dtype"] == "numeric"),
    Accepted("dates", lambda: corpus.with_column("joined", [f"2024-01-{d:02d}" for d in range(1, 29)]), "",
             lambda b: column(b, "joined")["n_unique"] == 28),
    Accepted("long-cell", long_cell, "", lambda b: max(len(c) for c in cells(b)) <= 200),
    Accepted("formula-cells", lambda: corpus.with_column("note", ["=1+2", "+SUM(A1)", "-x", "@cmd", "ok"]), "",
             lambda b: "=1+2" in cells(b)),  # stored as typed; escaped on export (test below)
    Accepted("duplicate-and-empty-names", duplicate_and_empty_names, "Renamed columns",
             lambda b: [c["name"] for c in b["columns"]] == ["name", "age", "column_3", "age_2", "label"]),
    Accepted("all-missing-and-constant", all_missing_and_constant, "with no values at all: nothing",
             lambda b: column(b, "nothing")["n_unique"] == 0 and column(b, "always")["n_unique"] == 1),
    Accepted("500-classes", lambda: corpus.labelled([f"class_{i}" for i in range(500)]), "",
             lambda b: column(b, "label")["n_unique"] == 60),
]


@pytest.mark.parametrize("case", ACCEPTED, ids=[c.id for c in ACCEPTED])
def test_messy_file_is_read_and_cleaning_reported(api, case: Accepted):
    response = upload_api(api, f"{case.id}.csv", case.content())
    assert response.status_code == 201, response.content
    body = response.json()
    if case.note:
        assert any(case.note in note for note in body["cleaning_notes"]), body["cleaning_notes"]
    assert case.check(body), body


def test_path_in_file_name_goes_nowhere(api, media):
    response = upload_api(api, "../../../etc/evil <b>name</b>.csv", corpus.clean_csv())
    assert response.status_code == 201, response.content
    dataset = Dataset.objects.get(pk=response.json()["id"])
    assert "/" not in dataset.original_filename and ".." not in dataset.original_filename
    stored = Path(dataset.data_file.path).resolve()
    assert stored.is_relative_to(media.resolve() / "datasets" / str(dataset.owner_id))
    assert len(stored.stem) == 32 and stored.suffix == ".parquet"  # a generated name, nothing of the user's
    assert [p.resolve() for p in media_files(media)] == [stored]


# ---------------------------------------------------------------- schemas that cannot work


@pytest.fixture
def messy(user):
    """The generated table (520 rows) plus a text column, a constant, an empty and a 500-valued one, uploaded."""
    from datasets.services import dataset_create

    rows = corpus.table_rows(520)
    header = [*corpus.HEADER, "story", "always", "nothing", "many"]
    rows = [[*r, f"a long free text story number {i} about nothing in particular", "same", "", f"v{i % 500}"]
            for i, r in enumerate(rows)]
    return dataset_create(owner=user, file=SimpleUploadedFile("messy.csv", corpus.csv_text(header, rows).encode()))


SCHEMA_ERRORS = [
    ("label-not-a-column", {"label": "salary"}, "no column called “salary”"),
    ("feature-not-a-column", {"label": "label", "features": ["age", "height", "weight"]}, "height, weight"),
    ("label-one-class", {"label": "always"}, "only one value"),
    ("label-500-classes", {"label": "many"}, "500 different values — too many to be classes"),
    ("label-all-missing", {"label": "nothing"}, "no values at all"),
    ("row-name-not-a-column", {"label": "label", "row_name": "ident"}, "“ident”"),
    ("text-feature", {"label": "label", "features": ["age", "story"]}, "free text"),
    ("no-features-left", {"label": "label", "features": ["label"]}, "at least one feature"),
    ("class-name-for-no-class", {"label": "label", "features": ["age"], "class_names": {"maybe": "Maybe"}},
     "no value maybe"),
    ("features-not-a-list", {"label": "label", "features": "age"}, "features"),
]


@pytest.mark.parametrize(("payload", "message"), [c[1:] for c in SCHEMA_ERRORS], ids=[c[0] for c in SCHEMA_ERRORS])
def test_impossible_schema_is_refused_by_field(api, messy, payload: dict, message: str):
    response = api.put(f"/api/datasets/{messy.pk}/schema/", payload, format="json")
    assert response.status_code == 400, response.content
    assert message in response.json()["error"], response.json()
    messy.refresh_from_db()
    assert messy.schema is None


def test_malformed_json_is_a_400(api, messy):
    response = api.generic("PUT", f"/api/datasets/{messy.pk}/schema/", b'{"label": ', content_type="application/json")
    assert response.status_code == 400 and "JSON" in response.json()["error"]


# ---------------------------------------------------------------- job requests out of range


@pytest.fixture
def table(user):
    from datasets.services import dataset_create, dataset_schema_set

    dataset = dataset_create(owner=user, file=SimpleUploadedFile("table.csv", corpus.clean_csv()))
    return dataset_schema_set(dataset=dataset, label="label", features=["age", "city", "income"], row_name="name")


JOB_ERRORS = [
    ("negative-samples", {"params": {"lime": {"num_samples": -5}}}, "lime"),
    ("threshold-2", {"explainers": ["anchor"], "params": {"anchor": {"threshold": 2}}}, "anchor"),
    ("unknown-classifier", {"classifiers": ["magic_forest"]}, "classifiers"),
    ("unknown-explainer", {"explainers": ["oracle"]}, "explainers"),
    ("no-classifier", {"classifiers": []}, "classifiers"),
    ("row-ids-missing", {"rows": {"ids": [3, 60, 1000]}}, "rows"),
    ("row-ids-negative", {"rows": {"ids": [-1]}}, "rows"),
    ("row-ids-not-numbers", {"rows": {"ids": ["abc"]}}, "rows"),
    ("row-names-missing", {"rows": {"names": ["nobody"]}}, "rows"),
    ("zero-random-rows", {"rows": {"random": 0}}, "rows"),
    ("too-many-rows", {"rows": {"misclassified": 10**9}}, "rows"),
    ("two-row-modes", {"rows": {"random": 2, "ids": [1]}}, "rows"),
    ("test-size-0.9", {"params": {"test_size": 0.9}}, "test_size"),
    ("seed-negative", {"params": {"seed": -1}}, "seed"),
    ("unknown-param", {"params": {"lime": {"bogus": 1}}}, "lime"),
    ("unknown-param-group", {"params": {"turbo": {}}}, "params"),
    ("classifier-param-out-of-range", {"params": {"classifiers": {"decision_tree": {"min_samples_leaf": 0}}}},
     "decision_tree"),
]


@pytest.mark.parametrize(("change", "field"), [c[1:] for c in JOB_ERRORS], ids=[c[0] for c in JOB_ERRORS])
def test_out_of_range_job_is_refused_by_field(api, table, change: dict, field: str):
    request = {"dataset": table.pk, "classifiers": ["decision_tree"], "explainers": ["lime"], "rows": {"ids": [1]},
               "params": FAST} | change
    response = api.post("/api/jobs/", request, format="json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["field"] == field and len(body["error"]) > 15, body
    assert not Job.objects.exists()


@pytest.mark.parametrize("payload", [{"rows": [1, 2]}, {"classifiers": "knn"}, {"params": "fast"}, {"dataset": "x"}],
                         ids=["rows-a-list", "classifiers-a-string", "params-a-string", "dataset-not-an-id"])
def test_wrongly_typed_job_request_is_a_400(api, table, payload: dict):
    request = {"dataset": table.pk, "classifiers": ["knn"], "explainers": ["lime"]} | payload
    response = api.post("/api/jobs/", request, format="json")
    assert response.status_code == 400 and response.json()["error"], response.content
    assert not Job.objects.exists()


def test_job_without_schema_says_to_name_columns(api, user):
    from datasets.services import dataset_create

    dataset = dataset_create(owner=user, file=SimpleUploadedFile("t.csv", corpus.clean_csv()))
    response = api.post("/api/jobs/", {"dataset": dataset.pk, "classifiers": ["knn"], "explainers": ["lime"]}, format="json")
    assert response.status_code == 400 and "Name the dataset's columns first" in response.json()["error"]


# ---------------------------------------------------------------- awkward data that must still run


def test_class_of_one_row_runs_unstratified_and_says_so(api, user, run_on_commit):
    from datasets.services import dataset_create, dataset_schema_set

    labels = ["yes", "no"] * 29 + ["yes", "rare"]
    dataset = dataset_create(owner=user, file=SimpleUploadedFile("rare.csv", corpus.labelled(labels)))
    dataset_schema_set(dataset=dataset, label="label", features=["age", "city", "income"])
    with run_on_commit():
        job = api.post("/api/jobs/", {"dataset": dataset.pk, "classifiers": ["decision_tree"], "explainers": ["lime"],
                                      "rows": {"ids": [0]}, "params": FAST}, format="json").json()
    job = Job.objects.get(pk=job["id"])
    assert job.status == "succeeded", job.error
    assert any("single row" in note for note in job.runs.get().metrics["notes"])


def test_constant_empty_and_dirty_numeric_features_still_run(api, user, run_on_commit):
    from datasets.services import dataset_create, dataset_schema_set

    rows = corpus.table_rows()
    rows[0][3], rows[1][3], rows[4][1] = "inf", "-inf", "unknown"
    header = [*corpus.HEADER, "always", "nothing"]
    content = corpus.csv_text(header, [[*r, "same", ""] for r in rows]).encode()
    dataset = dataset_create(owner=user, file=SimpleUploadedFile("dirty.csv", content))
    dataset_schema_set(dataset=dataset, label="label", features=["age", "income", "always", "nothing", "city"])
    with run_on_commit():
        job = api.post("/api/jobs/", {"dataset": dataset.pk, "classifiers": ["logistic_regression"],
                                      "explainers": ["lime"], "rows": {"ids": [0, 4]}, "params": FAST}, format="json")
    job = Job.objects.get(pk=job.json()["id"])
    assert job.status == "succeeded", job.error
    assert job.explanations.count() == 2


def test_exported_csv_escapes_formula_cells(api, user, run_on_commit):
    """Row names and class names a spreadsheet would execute arrive escaped in the ZIP's CSV."""
    from datasets.services import dataset_create, dataset_schema_set

    rows = corpus.table_rows()
    rows[0][0], rows[1][0] = '"=HYPERLINK(""http://x"")"', "@SUM(A1)"
    dataset = dataset_create(owner=user, file=SimpleUploadedFile("formula.csv", corpus.csv_text(rows=rows).encode()))
    dataset_schema_set(dataset=dataset, label="label", features=["age", "income"], row_name="name",
                       class_names={"yes": "+yes", "no": "-no"})
    with run_on_commit():
        created = api.post("/api/jobs/", {"dataset": dataset.pk, "classifiers": ["decision_tree"], "explainers": ["lime"],
                                          "rows": {"ids": [0, 1]}, "params": FAST}, format="json").json()
    response = api.get(f"/api/jobs/{created['id']}/download/")
    assert response.status_code == 200, response.content
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    records = list(csv.DictReader(io.StringIO(archive.read("explanations.csv").decode())))
    assert {r["row_name"] for r in records} == {"'=HYPERLINK(\"http://x\")", "'@SUM(A1)"}
    for record in records:
        assert all(not value.startswith(("=", "+", "-", "@")) for value in record.values()), record
        assert record["predicted"] in ("'+yes", "'-no")


# ---------------------------------------------------------------- the same through the pages


@pytest.fixture
def browser(client, user):
    client.force_login(user)
    return client


PAGE_REFUSED = [c for c in REFUSED if c.id in ("one-column", "random-binary", "ragged-rows", "10000-columns", "zip-without-images")]


@pytest.mark.parametrize("case", PAGE_REFUSED, ids=[c.id for c in PAGE_REFUSED])
def test_refused_upload_is_a_form_error_on_the_page(browser, media, case: Refused):
    response = browser.post("/datasets/upload/", {"file": SimpleUploadedFile(f"{case.id}.csv", case.content())})
    assert response.status_code == 400
    assert b'class="field-error"' in response.content
    assert case.message.encode() in response.content.replace(b"&#x27;", b"'")
    assert not Dataset.objects.exists() and media_files(media) == []


def test_out_of_range_job_is_a_form_error_on_the_page(browser, table):
    response = browser.post("/jobs/new/", {"dataset": table.pk, "classifiers": ["decision_tree"],
                                           "explainers": ["anchor"], "anchor__threshold": "2", "rows_mode": "random"})
    assert response.status_code == 400 and b"Required precision" in response.content
    assert not Job.objects.exists()
