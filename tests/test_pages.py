"""Server-rendered pages: every step answers with a page (never a 500), errors in plain words, others' pages 404."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from explanations.models import Job
from tests.unit_fixtures import *  # noqa: F403
from tests.unit_fixtures import upload

pytestmark = pytest.mark.django_db

FAST_FORM = {"lime__num_samples": "300", "anchor__threshold": "0.9", "shap__background_size": "20"}


@pytest.fixture
def browser(client, user):
    client.force_login(user)
    return client


def test_signup_logs_in_and_shows_the_empty_state(client):
    response = client.post("/accounts/signup/", {"username": "newbie", "password1": "a-very-long-pass-9",
                                                 "password2": "a-very-long-pass-9"}, follow=True)
    assert response.status_code == 200
    assert b"No datasets yet" in response.content and b"Breast cancer" in response.content


def test_anonymous_users_are_sent_to_login(client):
    response = client.get("/datasets/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_upload_preview_schema_job_results_row(browser, run_on_commit):
    response = browser.post("/datasets/upload/", {"file": upload("zoo.csv"), "name": "Zoo"}, follow=True)
    assert response.status_code == 200
    dataset = response.context["dataset"]
    assert b"aardvark" in response.content and b"Columns" in response.content

    page = browser.get(f"/datasets/{dataset.pk}/schema/")
    assert page.status_code == 200 and b"What should be predicted?" in page.content
    form = {"label": "class_type", "row_name": "animal_name", "features": ["hair", "feathers", "eggs", "milk", "legs"],
            "categorical": ["legs"], **{f"class_name__{i}": name for i, name in enumerate(
                ["Mammal", "Bird", "Reptile", "Fish", "Amphibian", "Bug", "Invertebrate"])}}
    response = browser.post(f"/datasets/{dataset.pk}/schema/", form)
    assert response.status_code == 302 and f"/jobs/new/?dataset={dataset.pk}" in response["Location"]
    dataset.refresh_from_db()
    assert dataset.schema["class_names"]["2"] == "Bird" and dataset.schema["categorical"] == ["legs"]

    page = browser.get(f"/jobs/new/?dataset={dataset.pk}")
    assert page.status_code == 200 and b"flamingo" in page.content  # row-name suggestions
    with run_on_commit():
        response = browser.post("/jobs/new/", {"dataset": dataset.pk, "classifiers": ["random_forest", "knn"],
                                               "explainers": ["lime", "anchor", "shap"], "rows_mode": "names",
                                               "rows_names": "flamingo", "request_key": "k1", **FAST_FORM})
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert job.status == "succeeded", job.error
    assert browser.get(f"/jobs/{job.pk}/").status_code == 302  # finished jobs go to their results
    status = browser.get(f"/jobs/{job.pk}/status/").json()
    assert status["status"] == "succeeded" and status["progress"] == 1.0

    results = browser.get(f"/jobs/{job.pk}/results/")
    assert results.status_code == 200
    assert b"Download everything (ZIP)" in results.content and b"flamingo" in results.content
    assert results.content.count(b'alt="') >= 4
    row = browser.get(f"/jobs/{job.pk}/rows/23/")
    assert row.status_code == 200 and b"Bird" in row.content and b"Rule:" in row.content
    anchors = job.explanations.filter(explainer="anchor", row=23)
    assert anchors.count() == 2 and all(a.data["threshold"] == 0.9 for a in anchors)
    assert (b"anchor-below-threshold" in row.content) == any(a.data["meets_threshold"] is False for a in anchors)
    anchor = anchors.first()
    anchor.data = {**anchor.data, "meets_threshold": False}  # as when no rule reaches the threshold
    anchor.save()
    row = browser.get(f"/jobs/{job.pk}/rows/23/").content.decode()
    assert "No rule reached the 90% precision you asked for" in row
    assert browser.get(f"/jobs/{job.pk}/download.zip").status_code == 200


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", b"is empty"), (b"\x89PNG\r\n\x1a\nxx", b"PNG image"), (b"a,b\n", b"no data rows")],
)
def test_bad_uploads_show_a_form_error(browser, content, message):
    response = browser.post("/datasets/upload/", {"file": SimpleUploadedFile("x.csv", content)})
    assert response.status_code == 400 and message in response.content
    assert b'class="field-error"' in response.content


@override_settings(EXPLAINER_MAX_UPLOAD_MB=0)
def test_too_large_uploads_state_the_limit(browser):
    response = browser.post("/datasets/upload/", {"file": upload("heart.csv")})
    assert response.status_code == 400 and b"larger than 0 MB" in response.content


def test_schema_and_job_form_errors_sit_next_to_their_field(browser, zoo):
    response = browser.post(f"/datasets/{zoo.pk}/schema/", {"label": "class_type", "row_name": "animal_name"})
    assert response.status_code == 400 and b"Tick at least one feature column" in response.content
    response = browser.post("/jobs/new/", {"dataset": zoo.pk, "classifiers": ["random_forest"], "explainers": ["lime"],
                                           "rows_mode": "ids", "rows_ids": "7, 9999"})
    assert response.status_code == 400 and b"9999" in response.content and b'id="rows-error"' in response.content
    response = browser.post("/jobs/new/", {"dataset": zoo.pk, "explainers": ["lime"], "rows_mode": "random"})
    assert response.status_code == 400 and b"Pick at least one classifier" in response.content
    assert not Job.objects.exists()


def test_other_users_pages_are_404(client, other_user, zoo, user, run_on_commit):
    with run_on_commit():
        from explanations.services.job_create import job_create

        job = job_create(owner=user, dataset=zoo, classifiers=["decision_tree"], explainers=["lime"], rows={"ids": [0]},
                         params={"lime": {"num_samples": 300}})
    plot = job.plots.first()
    client.force_login(other_user)
    for path in (f"/datasets/{zoo.pk}/", f"/datasets/{zoo.pk}/schema/", f"/jobs/{job.pk}/", f"/jobs/{job.pk}/results/",
                 f"/jobs/{job.pk}/rows/0/", f"/jobs/{job.pk}/status/", f"/jobs/{job.pk}/download.zip",
                 f"/plots/{plot.pk}.png", f"/plots/{plot.pk}.svg", f"/jobs/new/?dataset={zoo.pk}"):
        assert client.get(path).status_code == 404, path
    assert client.post(f"/datasets/{zoo.pk}/delete/").status_code == 404
    assert client.post(f"/jobs/{job.pk}/cancel/").status_code == 404


def test_demo_dataset_is_ready_to_use(browser):
    response = browser.post("/datasets/demo/iris/", follow=True)
    dataset = response.context["dataset"]
    assert dataset.schema["label"] == "species" and len(dataset.schema["class_names"]) == 3
    assert dataset.n_rows == 150
