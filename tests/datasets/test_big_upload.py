"""Big uploads are read by a worker: the web answers at once, the dataset becomes ready (or failed, with why)."""

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from datasets.models import Dataset
from tests.unit_fixtures import *  # noqa: F403
from tests.unit_fixtures import upload

pytestmark = pytest.mark.django_db


def test_big_upload_is_read_by_a_worker(api, settings, run_on_commit):
    settings.EXPLAINER_SYNC_INGEST_MB = 0.001  # everything counts as big
    with run_on_commit():
        response = api.post("/api/datasets/", {"file": upload("heart.csv"), "name": "Heart"}, format="multipart")
        assert response.status_code == 201 and response.json()["status"] == "processing"
        raw = Dataset.objects.get().raw_file.name
        assert raw.startswith("uploads/") and "heart" not in raw and default_storage.exists(raw)
    body = api.get(f"/api/datasets/{response.json()['id']}/").json()
    assert body["status"] == "ready" and body["n_rows"] == 303 and body["error"] == ""
    assert not default_storage.exists(raw)
    schema = api.put(f"/api/datasets/{body['id']}/schema/", {"label": "num"}, format="json")
    assert schema.status_code == 200


def test_big_unreadable_upload_fails_with_the_reason(api, settings, run_on_commit, client, user):
    settings.EXPLAINER_SYNC_INGEST_MB = 0.00001
    with run_on_commit():
        response = api.post("/api/datasets/", {"file": SimpleUploadedFile("a.csv", b"\x89PNG\r\n\x1a\n" + b"x" * 100)},
                            format="multipart")
    body = api.get(f"/api/datasets/{response.json()['id']}/").json()
    assert body["status"] == "failed" and "PNG" in body["error"]
    schema = api.put(f"/api/datasets/{body['id']}/schema/", {"label": "x"}, format="json")
    assert schema.status_code == 409 and "could not be read" in schema.json()["error"]
    client.force_login(user)
    page = client.get(f"/datasets/{body['id']}/")
    assert page.status_code == 200 and b"could not be read" in page.content
    assert client.get(f"/datasets/{body['id']}/schema/").status_code == 302


def test_processing_dataset_page_refreshes_itself(api, settings, client, user):
    settings.EXPLAINER_SYNC_INGEST_MB = 0.001
    response = api.post("/api/datasets/", {"file": upload("zoo.csv")}, format="multipart")  # no worker ran
    client.force_login(user)
    page = client.get(f"/datasets/{response.json()['id']}/")
    assert b"Reading your file" in page.content and b"data-reload-after=" in page.content  # static/js/page.js reloads
