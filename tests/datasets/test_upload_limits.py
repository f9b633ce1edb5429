"""Issue 15, uploads: whatever decodes or parses a file has a bounded cost, nothing is silently shifted, and a
file a worker cannot read ends ``failed`` with the reason, never "processing" for ever.

Every hostile file is built here, small in bytes: a sniffer bomb, a header longer than any sample, a header
field over csv's limit, a ZIP of huge blank images, a PNG whose header claims 50000 × 50000, and ZIP members
with a bad CRC, the encrypted flag or a compression method zipfile cannot unpack.
"""

from __future__ import annotations

import csv
import io
import struct
import time
import zipfile
import zlib

import numpy as np
import pytest
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded, WorkerLostError
from celery.signals import task_failure
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from datasets import ingest
from datasets.models import Dataset, DatasetStatus
from datasets.selectors import dataset_frame_load
from tests.unit_fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def media_files(root) -> list:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def post(api, name: str, content: bytes):
    return api.post("/api/datasets/", {"file": SimpleUploadedFile(name, content)}, format="multipart")


# ---------------------------------------------------------------- hostile files


def sniffer_bomb() -> bytes:
    return b",'" * 32 * 1024  # 64 KiB: quadratic in csv.Sniffer (17 s)


def long_header(n_columns: int = 1999, name_length: int = 200) -> bytes:
    """Column i is named ``c{i:04d}xxx…`` and holds ``c{i:04d}`` in every row: a shift shows at once."""
    names = [f"c{i:04d}".ljust(name_length, "x") for i in range(n_columns)]
    row = ",".join(f"c{i:04d}" for i in range(n_columns))
    return ("\n".join([",".join(names), row, row, row]) + "\n").encode()


def field_over_limit() -> bytes:
    return ("a," + "b" * 140_000 + "\n1,2\n3,4\n").encode()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A tiny, valid-looking PNG whose header says ``width`` × ``height`` (its pixel data is a few bytes)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + png_chunk(b"IEND", b""))


def png_of(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


def zip_of(files: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return buffer.getvalue()


def small_images(n: int = 2, side: int = 8) -> dict[str, bytes]:
    image = png_of(side, side)
    return {f"{label}/{i}.png": image for label in ("cats", "dogs") for i in range(n)}


def zip_patched(files: dict[str, bytes], *, local_offset: int, central_offset: int, value: int, or_bits=False) -> bytes:
    """The ZIP with a 2-byte field of every local and central header set to ``value`` (or OR-ed with it)."""
    data = bytearray(zip_of(files, zipfile.ZIP_STORED))
    for signature, offset in ((b"PK\x03\x04", local_offset), (b"PK\x01\x02", central_offset)):
        start = data.find(signature)
        while start >= 0:
            old = struct.unpack_from("<H", data, start + offset)[0]
            struct.pack_into("<H", data, start + offset, (old | value) if or_bits else value)
            start = data.find(signature, start + 4)
    return bytes(data)


# ---------------------------------------------------------------- CSV: sniffing and headers


def test_sniffer_bomb_is_answered_fast_without_csv_sniffer(api, monkeypatch):
    def quadratic(*args, **kwargs):
        raise AssertionError("csv.Sniffer is quadratic on some inputs; it must not run on uploads")

    monkeypatch.setattr(csv.Sniffer, "sniff", quadratic)
    response = post(api, "bomb.csv", sniffer_bomb())  # csv.Sniffer took 17 s on it (and held the GIL)
    assert response.status_code == 400 and "32,769 columns" in response.json()["error"]


def test_delimiter_is_judged_on_a_bounded_sample():
    seen = []

    class Spy(io.StringIO):
        def __init__(self, text, newline=None):
            seen.append(len(text))
            super().__init__(text, newline=newline)

    text = "a;b;c\n" + "1;2;3\n" * 200_000  # 1.2 MB
    original = ingest.io.StringIO
    ingest.io.StringIO = Spy
    try:
        assert ingest.delimiter_detect(text) == ";"
    finally:
        ingest.io.StringIO = original
    assert seen and max(seen) <= ingest.SNIFF_CHARS


@pytest.mark.parametrize(("text", "delimiter"), [
    ("a;b;c\n1,5;2,5;3\n4,5;5;6\n", ";"),  # decimal commas do not fool it
    ('a,b\n"x;y;z",1\n"p;q",2\n', ","),  # separators inside quotes do not count
    ("a\tb\tc\n1\t2\t3\n", "\t"),
    ("a|b\n1|2\n", "|"),
    ("only\n1\n2\n", ","),
    ("x,y;z" + ",w" * 1000, ","),  # one unfinished line: judged by its counts
])
def test_delimiter_detection_keeps_todays_answers(text, delimiter):
    assert ingest.delimiter_detect(text) == delimiter


def test_header_longer_than_any_sample_is_read_whole_and_never_shifted(api, user):
    content = long_header()
    assert len(content.split(b"\n")[0]) > ingest.SAMPLE_BYTES  # longer than the sniffing sample
    response = post(api, "long.csv", content)
    assert response.status_code == 201, response.content
    assert response.json()["n_columns"] == 1999
    frame = dataset_frame_load(dataset=Dataset.objects.get())
    assert [c[:5] for c in frame.columns] == [f"c{i:04d}" for i in range(1999)]
    assert all(frame[c].iloc[0] == c[:5] for c in frame.columns)  # c0000 holds c0000's values (it held c0732's)
    # (shifted, it took 130 s and 887 MB, building a 732-level row index from the shifted columns)
    assert frame.index.nlevels == 1 and len(frame) == content.count(b"\n") - 1


def test_rows_longer_than_the_header_are_refused_not_made_an_index(api):
    response = post(api, "ragged.csv", b"a,b\n1,2,3\n4,5,6\n")
    assert response.status_code == 400 and "more fields than the header" in response.json()["error"]
    assert not Dataset.objects.exists()


def test_header_field_over_csvs_limit_is_a_400_sentence(api, media):
    response = post(api, "field.csv", field_over_limit())
    assert response.status_code == 400
    error = response.json()["error"]
    assert "“field.csv”" in error and "131,072 characters" in error and "Shorten" in error
    assert not Dataset.objects.exists() and media_files(media) == []


def test_header_row_over_the_header_limit_is_refused(api, monkeypatch):
    monkeypatch.setattr(ingest, "HEADER_MAX_BYTES", 1024)
    response = post(api, "wide.csv", (",".join(f"column_{i}" for i in range(500)) + "\n" + "1," * 499 + "1\n").encode())
    assert response.status_code == 400 and "header row is longer than" in response.json()["error"]


# ---------------------------------------------------------------- images


def test_pixel_bomb_zip_goes_to_the_worker_and_is_refused_before_any_decoding(api, monkeypatch, run_on_commit, media):
    def no_decoding(self, *args, **kwargs):
        raise AssertionError("an image was decoded")

    blank = png_of(2048, 2048)
    bomb = zip_of({f"{label}/{i}.png": blank for label in ("a", "b") for i in range(1001)})  # 2,002 images
    monkeypatch.setattr(Image.Image, "load", no_decoding)
    monkeypatch.setattr("PIL.ImageFile.ImageFile.load", no_decoding)
    assert len(bomb) < 2 * 1024 * 1024  # well under the 20 MB that sent files to a worker
    started = time.perf_counter()
    with run_on_commit():
        response = post(api, "bomb.zip", bomb)
        assert response.status_code == 201 and response.json()["status"] == "processing"  # not in the web request
    body = api.get(f"/api/datasets/{response.json()['id']}/").json()
    assert time.perf_counter() - started < 30
    assert body["status"] == "failed" and "500,000,000 pixels" in body["error"]
    assert "EXPLAINER_IMAGE_MAX_PIXELS" in body["error"] and media_files(media) == []


def test_pixel_budget_is_checked_in_the_web_request_for_a_small_zip(api, settings, monkeypatch):
    settings.EXPLAINER_IMAGE_MAX_PIXELS = 1000
    monkeypatch.setattr(Image.Image, "convert", lambda *a, **k: pytest.fail("an image was decoded"))
    response = post(api, "faces.zip", zip_of(small_images(n=10)))  # 20 images of 64 pixels
    assert response.status_code == 400 and "more than 1,000 pixels" in response.json()["error"]


def test_image_zip_over_the_web_budget_is_read_by_a_worker(api, settings, run_on_commit):
    settings.EXPLAINER_SYNC_IMAGE_PIXELS = 100
    with run_on_commit():
        response = post(api, "faces.zip", zip_of(small_images(n=2)))  # 4 × 64 pixels
        assert response.status_code == 201 and response.json()["status"] == "processing"
    body = api.get(f"/api/datasets/{response.json()['id']}/").json()
    assert body["status"] == "ready" and body["n_rows"] == 4


def test_image_zip_unpacking_to_more_than_the_sync_size_is_read_by_a_worker(api, settings, monkeypatch):
    settings.EXPLAINER_SYNC_INGEST_MB = 0.001  # 1 KB
    image = png_of(8, 8) + b"\0" * 300  # squeezes well in the archive, not unpacked
    content = zip_of({f"{label}/{i}.png": image for label in "ab" for i in range(2)})
    assert len(content) < 1024 < 4 * len(image)
    monkeypatch.setattr(Image, "open", lambda *a, **k: pytest.fail("a header was read in the web request"))
    response = post(api, "faces.zip", content)
    assert response.status_code == 201 and response.json()["status"] == "processing"


def test_small_image_zip_is_still_read_in_the_request(api):
    response = post(api, "faces.zip", zip_of(small_images(n=2)))
    assert response.status_code == 201 and response.json()["status"] == "ready"


def test_png_whose_header_claims_50000_squared_is_a_400(api):
    files = {"a/huge.png": png_claiming(50_000, 50_000), "b/small.png": png_of(8, 8)}
    response = post(api, "huge.zip", zip_of(files))
    assert response.status_code == 400
    error = response.json()["error"]
    assert "“a/huge.png”" in error and "2048 pixels" in error


def test_member_with_a_bad_crc_is_a_400(api):
    files = small_images()
    data = bytearray(zip_of(files, zipfile.ZIP_STORED))
    image = files["cats/0.png"]
    at = data.find(image) + len(image) - 1  # the last byte of the first member (its IEND checksum)
    data[at] ^= 0xFF
    response = post(api, "crc.zip", bytes(data))
    assert response.status_code == 400
    assert "cats/0.png" in response.json()["error"] and "checksum (CRC)" in response.json()["error"]


def test_encrypted_member_is_a_400(api):
    content = zip_patched(small_images(), local_offset=6, central_offset=8, value=0x1, or_bits=True)
    response = post(api, "secret.zip", content)
    assert response.status_code == 400 and "is encrypted" in response.json()["error"]


def test_member_with_an_unsupported_compression_method_is_a_400(api):
    content = zip_patched(small_images(), local_offset=8, central_offset=10, value=99)  # 99: AES
    response = post(api, "aes.zip", content)
    assert response.status_code == 400
    error = response.json()["error"]
    assert "compression method 99" in error and "deflate" in error


def test_too_many_members_are_refused_from_the_central_directory(api, monkeypatch):
    monkeypatch.setattr("datasets.images.MAX_MEMBERS", 3)
    response = post(api, "many.zip", zip_of(small_images(n=2)))
    assert response.status_code == 400 and "at most 3" in response.json()["error"]


def test_damaged_pixels_are_a_400(api):
    image = png_of(8, 8)
    files = {"a/1.png": image[:40], "a/2.png": image, "b/1.png": image}  # header whole, pixel data cut
    response = post(api, "cut.zip", zip_of(files))
    assert response.status_code == 400 and "“a/1.png”" in response.json()["error"]


# ---------------------------------------------------------------- the worker: failed with the reason, raw file gone


def deferred(api, settings, run_on_commit, content: bytes, name: str = "big.csv") -> dict:
    settings.EXPLAINER_SYNC_INGEST_MB = 0.00001  # everything goes to the worker
    with run_on_commit():
        response = post(api, name, content)
        assert response.status_code == 201 and response.json()["status"] == "processing"
    return api.get(f"/api/datasets/{response.json()['id']}/").json()


def test_worker_that_cannot_read_a_file_fails_it_with_the_reason_and_deletes_it(api, settings, run_on_commit,
                                                                               media, client, user):
    body = deferred(api, settings, run_on_commit, field_over_limit())
    assert body["status"] == "failed" and "131,072 characters" in body["error"]
    assert Dataset.objects.get().raw_file.name == "" and media_files(media) == []
    client.force_login(user)
    page = client.get(f"/datasets/{body['id']}/")
    assert b"131,072 characters" in page.content and b"window.location.reload" not in page.content


def test_unexpected_error_in_the_worker_fails_the_dataset_in_words(api, settings, run_on_commit, media, monkeypatch):
    def broken(*args, **kwargs):
        raise KeyError("internal detail 0x7f")

    monkeypatch.setattr("datasets.services.upload_read", broken)
    body = deferred(api, settings, run_on_commit, b"a,b\n1,2\n3,4\n")
    assert body["status"] == "failed" and "Upload it again" in body["error"]
    assert "internal detail" not in body["error"] and "KeyError" not in body["error"]
    assert media_files(media) == []


def test_soft_time_limit_in_the_worker_fails_the_dataset(api, settings, run_on_commit, media, monkeypatch):
    def slow(*args, **kwargs):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr("datasets.services.upload_read", slow)
    body = deferred(api, settings, run_on_commit, b"a,b\n1,2\n3,4\n")
    assert body["status"] == "failed" and "took longer than 600 seconds" in body["error"]
    assert media_files(media) == []


@pytest.mark.parametrize(("exception", "message"), [
    (TimeLimitExceeded(660), "took longer than"), (WorkerLostError("signal 9"), "stopped before it finished")])
def test_hard_limit_or_lost_worker_fails_the_dataset(api, settings, media, exception, message):
    from datasets.tasks import dataset_ingest

    settings.EXPLAINER_SYNC_INGEST_MB = 0.00001
    response = post(api, "big.csv", b"a,b\n1,2\n3,4\n")  # queued, never run: the worker died on it
    dataset = Dataset.objects.get()
    assert dataset.status == DatasetStatus.PROCESSING and media_files(media)
    task_failure.send(sender=dataset_ingest, task_id="x", exception=exception, args=[dataset.pk], kwargs={})
    body = api.get(f"/api/datasets/{response.json()['id']}/").json()
    assert body["status"] == "failed" and message in body["error"] and media_files(media) == []


def test_ingest_task_has_time_limits_sized_for_ingest(settings):
    from datasets.tasks import dataset_ingest

    assert dataset_ingest.soft_time_limit == settings.EXPLAINER_INGEST_SOFT_TIME_LIMIT == 600
    assert dataset_ingest.time_limit > dataset_ingest.soft_time_limit
    assert dataset_ingest.time_limit < settings.CELERY_TASK_SOFT_TIME_LIMIT  # not the 50 minutes of a job
    assert dataset_ingest.reject_on_worker_lost is False  # a file that kills its worker is not redelivered for ever


def test_worker_memory_is_bounded_while_reading(api, settings, run_on_commit, media, monkeypatch):
    from datasets import services

    settings.EXPLAINER_INGEST_MAX_MEMORY_MB = 256
    real = services.upload_read

    def greedy(*args, **kwargs):
        np.empty(2 * 1024**3, dtype=np.uint8)  # 2 GB of address space: past the bound
        return real(*args, **kwargs)

    monkeypatch.setattr(services, "upload_read", greedy)
    body = deferred(api, settings, run_on_commit, b"a,b\n1,2\n3,4\n")
    assert body["status"] == "failed" and "memory" in body["error"] and media_files(media) == []
    np.empty(2 * 1024**3, dtype=np.uint8)  # and the bound is lifted afterwards
