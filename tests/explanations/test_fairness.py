"""Sharing the workers in-process: the per-account job quota and the cost limit (API, form, rerun), a cancel that
stops inside a batch (the engines' stop check), and a run that hands its worker to another user's waiting run,
then resumes where it stopped."""

from __future__ import annotations

import time
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from explanations import services, tasks
from explanations.ml.engine import JobStopped, stop_check_set
from explanations.ml.engine.kernel_shap import KernelShapBatch
from explanations.models import Explanation, Job, JobStatus, ModelRun
from explanations.services import JobStopCheck, job_cancel, job_classifier_run, job_create
from tests.unit_fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db

FAST = {"lime": {"num_samples": 300}}
TABULAR_CLASSIFIERS = ["random_forest", "logistic_regression", "svm", "gradient_boosting", "knn", "decision_tree",
                       "naive_bayes", "mlp"]
MAXIMAL = {"classifiers": TABULAR_CLASSIFIERS, "explainers": ["lime", "anchor", "shap"], "rows": {"all_test": True},
           "params": {"lime": {"num_samples": 50000}, "trust": {"stability_runs": 20}}}


@pytest.fixture
def enqueued(monkeypatch) -> list[tuple]:
    """What would go to the broker, instead of running it."""
    sent: list[tuple] = []
    monkeypatch.setattr(tasks.job_classifier_run, "apply_async", lambda args, queue=None, **options: sent.append(tuple(args)))
    return sent


@pytest.fixture
def other_zoo(other_user):
    from datasets.services import dataset_create, dataset_schema_set

    dataset = dataset_create(owner=other_user, file=upload("zoo.csv"), name="Zoo")  # noqa: F405
    features = [c for c in dataset.column_names if c not in ("animal_name", "class_type")]
    return dataset_schema_set(dataset=dataset, label="class_type", features=features)


def job_post(api, dataset, **request):
    body = {"dataset": dataset.pk, "classifiers": ["decision_tree"], "explainers": ["lime"], "rows": {"ids": [0]},
            "params": FAST} | request
    return api.post("/api/jobs/", body, format="json")


# ---------------------------------------------------------------- quotas


def test_one_job_more_than_the_active_limit_is_a_429_that_says_how_to_fit(api, zoo, settings):
    assert settings.EXPLAINER_MAX_ACTIVE_JOBS_PER_USER == 3  # the default
    first = [job_post(api, zoo).json()["id"] for _ in range(3)]
    refused = job_post(api, zoo)
    assert refused.status_code == 429
    assert refused.json()["error"] == ("You already have 3 jobs queued or running, and one account may have at most 3 "
                                       "at a time. Wait for one to finish or cancel one, then submit this job again.")
    assert Job.objects.count() == 3
    assert api.post(f"/api/jobs/{first[0]}/rerun/").status_code == 429  # a rerun is a new job like any other
    assert api.post(f"/api/jobs/{first[0]}/cancel/").status_code == 200
    assert job_post(api, zoo).status_code == 201  # a cancelled job frees its place at once


def test_the_active_limit_is_per_account(api, other_api, zoo, other_zoo, settings):
    settings.EXPLAINER_MAX_ACTIVE_JOBS_PER_USER = 1
    assert job_post(api, zoo).status_code == 201
    assert job_post(api, zoo).status_code == 429
    assert job_post(other_api, other_zoo).status_code == 201


def test_the_maximal_job_is_refused_with_its_cost_and_the_way_to_fit(api, zoo):
    response = job_post(api, zoo, **MAXIMAL)
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == "cost" and body["limit"] == 100_000_000 and body["cost"] > body["limit"]
    assert "one job may take at most 100 million" in body["error"]
    assert "Explain fewer rows, pick fewer classifiers or explainers, or lower the samples or stability reruns." in body["error"]
    assert not Job.objects.exists()


def test_every_explainer_and_reruns_count_in_the_cost(zoo):
    from explanations.quotas import job_cost
    from explanations.services import job_options_clean

    def cost(**request) -> int:
        base = {"classifiers": ["knn"], "explainers": ["lime"], "rows": {"ids": [0, 1]}, "params": {}}
        return job_cost(dataset=zoo, options=job_options_clean(dataset=zoo, **(base | request)))

    assert cost() == 2 * 1000  # 2 rows, 1000 LIME samples (the tests' settings rerun nothing for stability)
    assert cost(params={"trust": {"stability_runs": 5}}) == 2 * 1000 * 6
    assert cost(explainers=["lime", "shap", "anchor"], params={"trust": {"stability_runs": 0}}) == 2 * (1000 + 500 + 100 * 4 * 5)
    assert cost(classifiers=["knn", "svm"], rows={"all_test": True}, params={"trust": {"stability_runs": 1}}) == 26 * 2 * 1000 * 2


def test_the_job_form_shows_the_quota_and_cost_sentences(client, user, zoo, settings):
    client.force_login(user)
    form = {"dataset": zoo.pk, "classifiers": TABULAR_CLASSIFIERS, "explainers": ["lime", "anchor", "shap"],
            "rows_mode": "all_test", "lime__num_samples": "50000", "trust__stability_runs": "20"}
    response = client.post("/jobs/new/", form)
    assert response.status_code == 400 and b"This job is too big" in response.content
    assert b"one job may take at most 100 million" in response.content and not Job.objects.exists()
    settings.EXPLAINER_MAX_ACTIVE_JOBS_PER_USER = 1
    small = {"dataset": zoo.pk, "classifiers": ["knn"], "explainers": ["lime"], "rows_mode": "ids", "rows_ids": "0",
             "lime__num_samples": "300"}
    assert client.post("/jobs/new/", small).status_code == 302
    response = client.post("/jobs/new/", small)
    assert response.status_code == 429
    assert b"one account may have at most 1 at a time. Wait for one to finish or cancel one" in response.content


# ---------------------------------------------------------------- cancel inside a batch


def test_the_stop_check_raises_inside_an_engine_loop_once_the_job_is_cancelled(zoo, user):
    job = job_create(owner=user, dataset=zoo, classifiers=["knn"], explainers=["shap"], rows={"ids": [0]}, params={})
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)
    rng = np.random.default_rng(0)
    background, X = rng.normal(size=(10, 6)), rng.normal(size=(40, 6))
    calls: list[int] = []

    def predict(inputs: np.ndarray) -> np.ndarray:
        calls.append(len(inputs))
        return np.stack([inputs.sum(axis=1), -inputs.sum(axis=1)], axis=1)

    engine = KernelShapBatch(background, predict)
    check = JobStopCheck(job.pk, interval=0)
    with stop_check_set(check):
        engine.explain(X[:2], predict(X[:2]), nsamples=50)  # running: the check lets it work
        job_cancel(job=job)
        calls.clear()
        with pytest.raises(JobStopped):
            engine.explain(X, predict(X), nsamples=50)
    assert calls == [40]  # stopped at the first row, before the model saw any coalition
    engine.explain(X[:2], predict(X[:2]), nsamples=50)  # outside the task nothing checks


def test_a_cancel_during_a_batch_stops_before_the_batch_ends_and_the_task_ends_quietly(zoo, user, settings, monkeypatch,
                                                                                      enqueued):
    settings.EXPLAINER_BATCH_SIZE = 40
    job = job_create(owner=user, dataset=zoo, classifiers=["knn"], explainers=["lime"], rows={"ids": list(range(30))},
                     params=FAST)
    save = services.explanation_save

    def save_then_cancel(**kwargs) -> None:
        save(**kwargs)
        job_cancel(job=Job.objects.get(pk=job.pk))  # the user presses Cancel while the batch is being drawn

    monkeypatch.setattr(services, "explanation_save", save_then_cancel)
    monkeypatch.setattr(tasks, "JobStopCheck", lambda job_id: JobStopCheck(job_id, interval=0))
    tasks.job_classifier_run.apply(args=[job.pk, "knn"])
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and job.error == ""
    assert Explanation.objects.filter(job=job).count() == 1  # not the whole batch of 30


# ---------------------------------------------------------------- fair sharing


@pytest.fixture
def sms(user):
    import pandas as pd
    from django.core.files.uploadedfile import SimpleUploadedFile

    from datasets.services import dataset_create, dataset_schema_set

    frame = pd.read_csv(SHARED / "sms_spam.csv").sample(200, random_state=0)  # noqa: F405
    dataset = dataset_create(owner=user, file=SimpleUploadedFile("sms.csv", frame.to_csv(index=False).encode()))
    return dataset_schema_set(dataset=dataset, label="label", features=["text"], text=["text"])


@pytest.mark.parametrize(("table", "classifier", "fit"), [("zoo", "knn", (services, "classifier_fit")),
                                                           ("sms", "naive_bayes", ("run", "text_fit"))])
def test_a_run_hands_its_worker_to_another_users_waiting_run_and_resumes_where_it_stopped(
        request, table, classifier, fit, other_zoo, user, other_user, settings, monkeypatch, enqueued, run_on_commit):
    from explanations import text_image_run as modality_run

    settings.EXPLAINER_BATCH_SIZE = 2
    settings.EXPLAINER_FAIR_SHARE_SECONDS = 0  # one worker: take turns at every batch
    with run_on_commit():
        job = job_create(owner=user, dataset=request.getfixturevalue(table), classifiers=[classifier],
                         explainers=["lime"], rows={"ids": list(range(6))}, params=FAST)
    assert enqueued == [(job.pk, classifier)]
    save, other = services.explanation_save, []

    def save_and_other_user_submits(**kwargs) -> None:
        save(**kwargs)
        if not other:  # while the first batch is drawn, another user submits a job
            with run_on_commit():
                other.append(job_create(owner=other_user, dataset=other_zoo, classifiers=["knn"], explainers=["lime"],
                                        rows={"ids": [0]}, params=FAST))

    monkeypatch.setattr(services, "explanation_save", save_and_other_user_submits)  # texts save through it too
    job_classifier_run(job_id=job.pk, classifier=classifier, task_id="first")
    run = ModelRun.objects.get(job=job)
    assert Explanation.objects.filter(job=job).count() == 2  # one batch, then it yielded
    assert enqueued == [(job.pk, classifier), (other[0].pk, "knn"), (job.pk, classifier)]  # to the back of the queue
    assert run.status == "trained" and run.model_file and run.task_id == "" and run.heartbeat_at is None
    assert run.attempts == 0  # handing over is not an attempt for the stale-job sweeper
    assert Job.objects.get(pk=job.pk).status == JobStatus.RUNNING
    assert "Paused to let other users' jobs start" in run.stage

    monkeypatch.setattr(services, "explanation_save", save)
    settings.EXPLAINER_FAIR_SHARE_SECONDS = 60  # (with 0 it would hand the worker straight back: turns at every batch)
    job_classifier_run(job_id=other[0].pk, classifier="knn", task_id="other")  # the other user's job goes first
    assert Job.objects.get(pk=other[0].pk).status == JobStatus.SUCCEEDED

    def no_training(*args, **kwargs):
        raise AssertionError("the model was trained again")

    monkeypatch.setattr(modality_run if fit[0] == "run" else fit[0], fit[1], no_training)
    job_classifier_run(job_id=job.pk, classifier=classifier, task_id="second")  # the re-queued message
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert sorted(Explanation.objects.filter(job=job).values_list("row", flat=True)) == list(range(6))
    assert ModelRun.objects.get(job=job).attempts == 1


def test_no_handover_to_a_user_who_would_then_hold_more(zoo, other_zoo, user, other_user, settings, enqueued):
    mine = job_create(owner=user, dataset=zoo, classifiers=["knn"], explainers=["lime"], params=FAST)
    theirs = [job_create(owner=other_user, dataset=other_zoo, classifiers=["knn"], explainers=["lime"], params=FAST)
              for _ in range(2)]
    Job.objects.update(status=JobStatus.RUNNING)
    ModelRun.objects.filter(job__in=[mine, theirs[0]]).update(heartbeat_at=timezone.now(), task_id="t")
    run = ModelRun.objects.get(job=mine)
    assert not services.model_run_yield_due(job=mine, run=run)  # one each running: within the time slice, keep going
    settings.EXPLAINER_FAIR_SHARE_SECONDS = 0
    assert not services.model_run_yield_due(job=mine, run=run)  # not behind: the other user already has one running
    ModelRun.objects.filter(job=theirs[0]).update(heartbeat_at=None)
    assert services.model_run_yield_due(job=mine, run=run)
    job_cancel(job=theirs[1])
    job_cancel(job=theirs[0])
    assert not services.model_run_yield_due(job=mine, run=run)  # cancelled jobs wait for nothing


def test_a_handover_the_queue_refuses_keeps_the_run_going(zoo, user, monkeypatch):
    job = job_create(owner=user, dataset=zoo, classifiers=["knn"], explainers=["lime"], params=FAST)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)
    run = ModelRun.objects.get(job=job)
    assert services.model_run_claim(run=run, task_id="mine") and run.attempts == 1

    def refuse(*args, **kwargs):
        raise OSError("the broker is away")

    monkeypatch.setattr(tasks.job_classifier_run, "apply_async", refuse)
    assert services.model_run_yield(job=job, run=run) is False  # not handed over: this task goes on
    run.refresh_from_db()
    assert run.task_id == "mine" and run.heartbeat_at is not None and run.attempts == 1


def test_a_user_who_waited_a_slice_gets_the_next_turn_even_when_each_earlier_job_was_short(
        zoo, other_zoo, user, other_user, settings, enqueued):
    """One worker slot: the first user's jobs each end inside their slice, so the time a task held its run never
    reaches it; the other user's waiting time does, and the next batch boundary hands the worker over."""
    settings.EXPLAINER_FAIR_SHARE_SECONDS = 60
    mine = job_create(owner=user, dataset=zoo, classifiers=["knn"], explainers=["lime"], params=FAST)
    theirs = job_create(owner=other_user, dataset=other_zoo, classifiers=["knn"], explainers=["lime"], params=FAST)
    Job.objects.filter(pk=mine.pk).update(status=JobStatus.RUNNING)
    # queued in the first user's burst, before the other user's job
    ModelRun.objects.filter(job=mine).update(heartbeat_at=timezone.now(), task_id="t",
                                             queued_at=timezone.now() - timedelta(seconds=120))
    run = ModelRun.objects.get(job=mine)
    token = services._claimed_at.set(time.monotonic())  # this task has just taken the run
    try:
        assert not services.model_run_yield_due(job=mine, run=run)  # the other run has waited only a moment
        ModelRun.objects.filter(job=theirs).update(queued_at=timezone.now() - timedelta(seconds=61))
        assert services.model_run_yield_due(job=mine, run=run)  # it has waited a whole slice: its turn
        assert not services.model_run_yield_due(job=mine, run=run, at_start=True)  # only after a batch of progress
    finally:
        services._claimed_at.reset(token)
