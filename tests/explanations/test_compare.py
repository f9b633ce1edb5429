"""Issue 17: two jobs on the same dataset side by side, differences marked."""

import pytest

from explanations.models import Explanation, Job
from explanations.services.job_create import job_create
from tests.unit_fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db

FAST = {"lime": {"num_samples": 300}}


@pytest.fixture
def two_jobs(zoo, user, run_on_commit) -> tuple[Job, Job]:
    jobs = []
    for classifiers in (["random_forest", "logistic_regression"], ["random_forest"]):
        with run_on_commit():
            job = job_create(owner=user, dataset=zoo, classifiers=classifiers, explainers=["lime"],
                             rows={"ids": [0, 5, 9]}, params=FAST)
        job.refresh_from_db()
        assert job.status == "succeeded", job.error
        jobs.append(job)
    return jobs[0], jobs[1]


def test_compare_shows_metrics_rows_and_top_features_with_differences(two_jobs, api):
    a, b = two_jobs
    # make one difference we know of: job b's forest predicts row 5 otherwise
    Explanation.objects.filter(job=b, row=5).update(predicted="Invertebrate")
    body = api.get(f"/api/jobs/compare/?a={a.pk}&b={b.pk}").json()
    assert body["a"]["id"] == a.pk and body["b"]["id"] == b.pk and body["dataset"] == a.dataset_id
    assert set(body["a"]["metrics"]) == {"random_forest", "logistic_regression"} and set(body["b"]["metrics"]) == {"random_forest"}
    assert body["differences"]["accuracy_b_minus_a"] == {"random_forest": 0.0}  # same data, seed, settings
    assert [r["row"] for r in body["rows"]] == [0, 5, 9]
    assert body["differences"]["rows_predicted_differently"] == [5]
    assert set(body["rows"][0]["a"]) == {"random_forest", "logistic_regression"} and body["rows"][0]["b"]["random_forest"]["predicted"]
    assert len(body["a"]["top_features"]["random_forest"]) == 5
    assert body["differences"]["top_features_not_shared"] == {"random_forest": []}


def test_compare_refuses_other_datasets_the_same_job_and_missing_ids(two_jobs, api, heart, user, other_api):
    a, b = two_jobs
    other = Job.objects.create(owner=user, dataset=heart, classifiers=["knn"], explainers=["lime"], rows_spec={"ids": [0]},
                               params={"seed": 0, "test_size": 0.25}, schema=heart.schema, status="succeeded")
    for query, field in ((f"a={a.pk}&b={other.pk}", "b"), (f"a={a.pk}&b={a.pk}", "b"), (f"a={a.pk}", "b"), ("b=1", "a")):
        response = api.get(f"/api/jobs/compare/?{query}")
        assert response.status_code == 400 and response.json()["field"] == field, query
    assert other_api.get(f"/api/jobs/compare/?a={a.pk}&b={b.pk}").status_code == 404


def test_the_compare_page_marks_rows_predicted_differently(two_jobs, client, user):
    a, b = two_jobs
    Explanation.objects.filter(job=b, row=9).update(predicted="Invertebrate")
    client.force_login(user)
    assert f'href="/jobs/compare/?a={a.pk}"' in client.get(f"/jobs/{a.pk}/results/").content.decode()
    picker = client.get(f"/jobs/compare/?a={a.pk}").content.decode()
    assert f'<option value="{b.pk}"' in picker
    html = client.get(f"/jobs/compare/?a={a.pk}&b={b.pk}").content.decode()
    assert "1 of 3 rows are predicted differently" in html and html.count('class="differs"') == 1
    assert "Random forest" in html and "Logistic regression" in html and "same" in html
