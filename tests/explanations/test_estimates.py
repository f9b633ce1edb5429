"""Issue 17 item 3: the job form's estimate is within a factor 1.5 of a recorded run and never NaN; while a job
runs, the ETA comes from its own rates, the headline names the stage running now and the bar stays below 100 %."""

from datetime import timedelta

import pytest
from django.utils import timezone

from explanations.estimates import form_estimate, job_plan
from explanations.models import Explanation, Job, JobStatus, ModelRun, ModelRunStatus
from explanations.progress import job_live_status
from tests.explanations.test_image import mnist  # noqa: F401
from tests.unit_fixtures import *  # noqa: F403
from tests.unit_fixtures import upload

pytestmark = pytest.mark.django_db

# scripts/measure_rates.py adult.csv 3 on 2026-12-02: the default job (random forest + logistic regression ×
# LIME, Anchors, SHAP × 3 random rows, 5 stability reruns) took 138 s on one worker; issue 17 saw 85–126 s.
RECORDED_ADULT_SECONDS = (85.0, 138.0)


@pytest.fixture
def adult(user):
    from datasets.services import dataset_create, dataset_schema_default, dataset_schema_set

    dataset = dataset_create(owner=user, file=upload("adult.csv"), name="Adult")
    return dataset_schema_set(dataset=dataset, **dataset_schema_default(dataset=dataset))


def test_the_default_adult_job_is_estimated_within_a_factor_of_1_5(adult, user, settings):
    settings.EXPLAINER_TRUST_STABILITY_RUNS = 5  # production's default, as measured
    estimate = form_estimate(dataset=adult, owner=user, classifiers=["random_forest", "logistic_regression"],
                             explainers=["lime", "anchor", "shap"], rows={"random": 3}, params={})
    low, high = RECORDED_ADULT_SECONDS
    assert high / 1.5 <= estimate["seconds"] <= low * 1.5, estimate
    assert "≈ 2 min" in estimate["text"] and "3 rows" in estimate["text"]


def test_the_whole_test_set_is_counted_from_the_dataset_never_nan(adult, user, client):
    estimate = form_estimate(dataset=adult, owner=user, classifiers=["logistic_regression"], explainers=["lime"],
                             rows={"all_test": True}, params={"test_size": "0.25"})
    assert estimate["rows"] == 5000  # 8,141 test rows, at most EXPLAINER_MAX_JOB_ROWS explained
    assert "5,000 rows" in estimate["text"] and "NaN" not in estimate["text"] and estimate["large"]
    client.force_login(user)
    body = client.get("/jobs/estimate/", {"dataset": adult.pk, "classifiers": "logistic_regression", "explainers": "lime",
                                          "rows_mode": "all_test", "test_size": "0.2"}).json()
    assert body["rows"] == 5000 and body["seconds"] > 0 and "NaN" not in body["text"]
    body = client.get("/jobs/estimate/", {"dataset": adult.pk, "classifiers": "logistic_regression", "explainers": "lime",
                                          "rows_mode": "random", "rows_count": "not a number"}).json()
    assert body["rows"] == 0 and "NaN" not in body["text"]


def test_the_form_shows_the_estimate_without_script(zoo, user, client):
    client.force_login(user)
    html = client.get(f"/jobs/new/?dataset={zoo.pk}").content.decode()
    assert "2 classifiers × 3 explainers × 3 rows ≈" in html


def test_the_accounts_finished_jobs_correct_the_table(zoo, user):
    args = {"dataset": zoo, "owner": user, "classifiers": ["decision_tree"], "explainers": ["lime"],
            "rows": {"ids": [0, 1]}, "params": {}}
    before = form_estimate(**args)["seconds"]
    job = Job.objects.create(owner=user, dataset=zoo, classifiers=["decision_tree"], explainers=["lime"],
                             rows_spec={"ids": [0, 1]}, params={"test_size": 0.25, "seed": 0}, schema=zoo.schema,
                             status=JobStatus.SUCCEEDED)
    ModelRun.objects.create(job=job, classifier="decision_tree", status=ModelRunStatus.DONE, rows=[0, 1])
    planned = job_plan(job, with_history=False).total
    started = timezone.now() - timedelta(seconds=planned * 2)
    Job.objects.filter(pk=job.pk).update(started_at=started, finished_at=started + timedelta(seconds=planned * 2))
    after = form_estimate(**args)
    assert after["seconds"] == pytest.approx(before * 2, rel=0.01) and "your finished jobs" in after["basis"]


def running_job(zoo, user, *, classifiers=("random_forest", "logistic_regression")) -> Job:
    job = Job.objects.create(owner=user, dataset=zoo, classifiers=list(classifiers), explainers=["lime", "shap"],
                             rows_spec={"ids": [0, 1, 2, 3]}, params={"test_size": 0.25, "seed": 0}, schema=zoo.schema,
                             status=JobStatus.RUNNING, started_at=timezone.now() - timedelta(seconds=60))
    for key in classifiers:
        ModelRun.objects.create(job=job, classifier=key, rows=[0, 1, 2, 3], units_total=10)
    return job


def explained(job: Job, classifier: str, explainer: str, rows) -> None:
    for row in rows:
        Explanation.objects.create(job=job, classifier=classifier, explainer=explainer, row=row, predicted="Mammal")


def test_the_eta_comes_from_the_rate_this_job_has_shown(zoo, user):
    job = running_job(zoo, user, classifiers=("random_forest",))
    run = job.runs.get()
    plan = job_plan(job).runs["random_forest"]
    ModelRun.objects.filter(pk=run.pk).update(status=ModelRunStatus.TRAINED, stage="Explaining rows 3–4 of 4 with SHAP — Random forest")
    explained(job, "random_forest", "lime", [0, 1, 2, 3])
    done = plan.train + 4 * plan.row_seconds["lime"]
    now = timezone.now()
    for speed in (1.0, 0.25):  # as estimated, then four times slower: the ETA follows what the job has shown
        ModelRun.objects.filter(pk=run.pk).update(started_at=now - timedelta(seconds=done / speed))
        status = job_live_status(job=job, now=now)
        left = 4 * plan.row_seconds["shap"] + plan.global_views
        finish = job_plan(job).finish
        assert status["eta_seconds"] == pytest.approx((left + finish) / speed, abs=1.5)
        assert status["runs"][0]["eta_seconds"] == pytest.approx(left / speed, abs=1)
    assert status["headline"] == "Explaining rows 3–4 of 4 with SHAP — Random forest"


def test_the_headline_names_what_runs_now_not_a_finished_classifiers_stage(zoo, user):
    job = running_job(zoo, user)
    Job.objects.filter(pk=job.pk).update(stage="Drawing the global views for Logistic regression")
    job.refresh_from_db()
    now = timezone.now()
    job.runs.filter(classifier="logistic_regression").update(status=ModelRunStatus.DONE, started_at=now,
                                                             stage="Drawing the global views for Logistic regression")
    job.runs.filter(classifier="random_forest").update(status=ModelRunStatus.TRAINED, started_at=now,
                                                       stage="Explaining rows 1–4 of 4 with SHAP — Random forest")
    assert job_live_status(job=job)["headline"] == "Explaining rows 1–4 of 4 with SHAP — Random forest"
    job.runs.filter(classifier="logistic_regression").update(status=ModelRunStatus.TRAINED, stage="Training Logistic regression")
    assert job_live_status(job=job)["headline"] == (
        "Random forest: Explaining rows 1–4 of 4 with SHAP · Logistic regression: Training")


def test_the_bar_stays_below_100_percent_while_the_what_if_curves_remain(zoo, user, api):
    job = running_job(zoo, user)
    now = timezone.now()
    for key in job.classifiers:
        explained(job, key, "lime", [0, 1, 2, 3])
        explained(job, key, "shap", [0, 1, 2, 3])
    job.runs.update(status=ModelRunStatus.DONE, units_done=10, started_at=now - timedelta(seconds=30))
    Job.objects.filter(pk=job.pk).update(stage="Drawing what-if curves")
    body = api.get(f"/api/jobs/{job.pk}/").json()
    assert body["progress"] < 1.0 and body["eta_seconds"] > 0 and body["headline"] == "Drawing what-if curves"
    assert body["stage"] == "Drawing what-if curves"  # the field of before stays


def test_a_finished_jobs_eta_is_null_and_a_queued_jobs_is_the_estimate(finished, api, zoo, user):
    body = api.get(f"/api/jobs/{finished.pk}/").json()
    assert body["eta_seconds"] is None and body["progress"] == 1.0
    job = running_job(zoo, user)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED, started_at=None)
    body = api.get(f"/api/jobs/{job.pk}/").json()
    assert body["progress"] == 0.0 and body["eta_seconds"] == pytest.approx(job_plan(job).total, abs=1)


def test_an_image_jobs_estimate_counts_its_sanity_check_and_roar(mnist, user):  # noqa: F811
    def seconds(trust: dict) -> float:
        return form_estimate(dataset=mnist, owner=user, classifiers=["cnn"], explainers=["lime", "integrated_gradients"],
                             rows={"random": 3}, params={"trust": trust})["seconds"]

    plain = seconds({"stability_runs": 0, "sanity_images": 0, "roar_images": 0})
    sanity = seconds({"stability_runs": 0, "sanity_images": 3, "roar_images": 0})
    roar = seconds({"stability_runs": 0, "sanity_images": 0, "roar_images": 200})
    assert plain < sanity < roar  # 3 images × 4 layers again, then 200 + 66 images and 10 trainings of the CNN
    assert seconds({"stability_runs": 0, "sanity_images": 0, "roar_images": 400}) > roar
