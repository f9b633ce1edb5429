"""A job's files go with its row, whichever app deletes it, and only once the deletion commits."""

import pytest
from django.core.files.storage import default_storage
from django.db import transaction

from datasets.services import dataset_create, dataset_delete
from explanations.models import Job
from explanations.services.job_delete import job_delete
from tests.unit_fixtures import *  # noqa: F403
from tests.unit_fixtures import upload

pytestmark = pytest.mark.django_db



def files_of(job: Job) -> list[str]:
    """Read straight from the rows (not through the receiver under test)."""
    paths = [f.name for p in job.plots.all() for f in (p.png, p.svg)]
    paths += [r.model_file.name for r in job.runs.all() if r.model_file]
    paths.append(job.result_zip.name)
    assert len(paths) >= 4 and all(default_storage.exists(p) for p in paths)
    return paths


def test_deleting_a_dataset_removes_its_jobs_files_after_the_commit(finished, zoo, django_capture_on_commit_callbacks):
    paths = files_of(finished)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        dataset_delete(dataset=zoo)
    assert not Job.objects.filter(pk=finished.pk).exists()
    assert all(default_storage.exists(p) for p in paths)  # not yet committed: the files are still there
    for callback in callbacks:
        callback()
    assert not any(default_storage.exists(p) for p in paths)


def test_a_rolled_back_dataset_delete_keeps_the_jobs_and_their_files(finished, zoo, django_capture_on_commit_callbacks):
    paths = files_of(finished)
    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(RuntimeError):
        with transaction.atomic():
            dataset_delete(dataset=zoo)
            raise RuntimeError("rolled back")
    assert callbacks == []
    assert Job.objects.filter(pk=finished.pk).exists() and all(default_storage.exists(p) for p in paths)


def test_deleting_a_job_removes_its_files_and_keeps_the_dataset(finished, zoo, django_capture_on_commit_callbacks):
    paths = files_of(finished)
    with django_capture_on_commit_callbacks(execute=True):
        job_delete(job=finished)
    assert not any(default_storage.exists(p) for p in paths)
    assert default_storage.exists(zoo.data_file.name)


def test_the_dataset_page_lists_its_own_jobs_only(client, user, finished, zoo):
    other = dataset_create(owner=user, file=upload("heart.csv"), name="Heart")
    client.force_login(user)
    page = client.get(f"/datasets/{zoo.pk}/")
    assert page.status_code == 200
    assert b"Jobs on this dataset" in page.content and f"/jobs/{finished.pk}/".encode() in page.content
    page = client.get(f"/datasets/{other.pk}/")
    assert b"Jobs on this dataset" in page.content and b"No jobs yet." in page.content
    assert f"/jobs/{finished.pk}/".encode() not in page.content


def zip_names(api, job: Job) -> set[str]:
    import io
    import zipfile

    response = api.get(f"/api/jobs/{job.pk}/download/")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    return set(zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))).namelist())


def test_the_zip_is_never_stale_and_is_packed_again_only_when_something_changed(finished, api, client, user,
                                                                              run_on_commit):
    first = zip_names(api, finished)
    packed = Job.objects.get(pk=finished.pk).result_zip.name
    assert "plots/job_whatif_row0_legs.png" not in first
    assert zip_names(api, finished) == first
    assert Job.objects.get(pk=finished.pk).result_zip.name == packed  # nothing changed: the same file, not packed again

    with run_on_commit():  # drawn by a worker (eager here) after the job finished
        assert api.get(f"/api/jobs/{finished.pk}/whatif/?row=0&feature=legs").status_code == 202
    body = api.get(f"/api/jobs/{finished.pk}/whatif/?row=0&feature=legs").json()
    assert body["status"] == "ready" and body["plots"][0]["kind"] == "whatif"
    client.force_login(user)
    page = client.get(f"/jobs/{finished.pk}/download.zip")  # the page's link packs the same fresh ZIP
    assert page.status_code == 200
    later = zip_names(api, finished)
    assert {"plots/job_whatif_row0_legs.png", "plots/job_whatif_row0_legs.svg"} <= later and first < later
    repacked = Job.objects.get(pk=finished.pk).result_zip.name
    assert repacked != packed and default_storage.exists(repacked) and not default_storage.exists(packed)


def test_a_job_that_has_not_succeeded_has_no_zip(zoo, user, api):
    job = Job.objects.create(owner=user, dataset=zoo, classifiers=["decision_tree"], explainers=["lime"],
                             rows_spec={"ids": [0]}, params={"seed": 0, "test_size": 0.25}, schema=zoo.schema,
                             status="running")
    response = api.get(f"/api/jobs/{job.pk}/download/")
    assert response.status_code == 409 and "not ready" in response.json()["error"]
