"""Sharing the workers in-process: the per-account job quota and the cost limit (API, form, rerun), a cancel that
stops inside a batch (the engines' stop check), and the queue's fairness: an account has at most its allowance
of steps in the queue, so another user's job goes in ahead of the rest of a burst."""

from __future__ import annotations

import numpy as np
import pytest
from kombu.exceptions import OperationalError

from explanations import job_steps, pipeline, tasks
from explanations.ml.engine import JobStopped, stop_check_set
from explanations.ml.engine.kernel_shap import KernelShapBatch
from explanations.models import Explanation, Job, JobStatus, Step
from explanations.services.job_cancel import job_cancel
from explanations.services.job_create import job_create
from explanations.services.job_state import JobStopCheck
from tests.explanations.test_image import mnist  # noqa: F401
from tests.unit_fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db

FAST = {"lime": {"num_samples": 300}}
TABULAR_CLASSIFIERS = ["random_forest", "logistic_regression", "svm", "gradient_boosting", "knn", "decision_tree",
                       "naive_bayes", "mlp"]
MAXIMAL = {"classifiers": TABULAR_CLASSIFIERS, "explainers": ["lime", "anchor", "shap"], "rows": {"all_test": True},
           "params": {"lime": {"num_samples": 50000}, "trust": {"stability_runs": 20}}}


@pytest.fixture
def enqueued(monkeypatch) -> list[tuple]:
    """What would go to the broker (kind, step id, queue), instead of running it."""
    sent: list[tuple] = []
    monkeypatch.setattr(pipeline, "task_send", lambda *, kind, step_id, queue: sent.append((kind, step_id, queue)))
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
    from explanations.services.job_create import job_options_clean

    def cost(**request) -> int:
        base = {"classifiers": ["knn"], "explainers": ["lime"], "rows": {"ids": [0, 1]}, "params": {}}
        return job_cost(dataset=zoo, options=job_options_clean(dataset=zoo, **(base | request)))

    assert cost() == 2 * 1000  # 2 rows, 1000 LIME samples (the tests' settings rerun nothing for stability)
    assert cost(params={"trust": {"stability_runs": 5}}) == 2 * 1000 * 6
    assert cost(explainers=["lime", "shap", "anchor"], params={"trust": {"stability_runs": 0}}) == 2 * (1000 + 500 + 100 * 4 * 5)
    assert cost(classifiers=["knn", "svm"], rows={"all_test": True}, params={"trust": {"stability_runs": 1}}) == 26 * 2 * 1000 * 2


def test_an_image_jobs_sanity_check_and_roar_count_in_its_cost(mnist):  # noqa: F811
    from explanations.quotas import job_cost
    from explanations.services.job_create import job_options_clean

    def cost(trust: dict) -> int:
        options = job_options_clean(dataset=mnist, classifiers=["cnn"], explainers=["lime"], rows={"ids": [0, 1]},
                                    params={"lime": {"num_samples": 100}, "trust": {"stability_runs": 0, **trust}})
        return job_cost(dataset=mnist, options=options)

    assert cost({"sanity_images": 0, "roar_images": 0}) == 2 * 100
    # the sanity check: both images, once per randomised layer
    assert cost({"sanity_images": 3, "roar_images": 0}) == (2 + 2 * 4) * 100
    # ROAR: 60 training images and 20 test images explained again
    assert cost({"sanity_images": 0, "roar_images": 60}) == (2 + 60 + 20) * 100
    refused = cost({"sanity_images": 50, "roar_images": 5000})
    assert refused > cost({"sanity_images": 0, "roar_images": 60})


def test_the_quota_counts_the_cnns_weighted_layers():
    from explanations.ml.image_trust import weighted_layers
    from explanations.ml.torch_cnn import cnn_module_build
    from explanations.quotas import CNN_WEIGHTED_LAYERS

    assert len(weighted_layers(cnn_module_build((28, 28, 1), 8, 10))) == CNN_WEIGHTED_LAYERS


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
    settings.EXPLAINER_BATCHES_MIN = 1  # one batch of all 30 rows, cancelled while it runs
    job = job_create(owner=user, dataset=zoo, classifiers=["knn"], explainers=["lime"], rows={"ids": list(range(30))},
                     params=FAST)
    save = job_steps.explanation_save

    def save_then_cancel(**kwargs) -> None:
        save(**kwargs)
        job_cancel(job=Job.objects.get(pk=job.pk))  # the user presses Cancel while the batch is being drawn

    tasks.step_task_run(Step.objects.get(job=job, kind="train").pk, worker="w", task_id="t-train")
    explain = Step.objects.get(job=job, kind="explain")
    monkeypatch.setattr(job_steps, "explanation_save", save_then_cancel)
    monkeypatch.setattr(tasks, "JobStopCheck", lambda job_id: JobStopCheck(job_id, interval=0))
    tasks.batch_explain.apply(args=[explain.pk])
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and job.error == ""
    assert Explanation.objects.filter(job=job).count() == 1  # not the whole batch of 30
    explain.refresh_from_db()
    assert explain.status == "cancelled"


# ---------------------------------------------------------------- fair sharing


def sent_jobs(sent: list[tuple]) -> list[int]:
    return [Step.objects.get(pk=step_id).job.owner.username for _, step_id, _ in sent]


def test_an_account_has_its_allowance_in_the_queue_and_the_rest_follows_as_steps_end(zoo, user, settings, enqueued,
                                                                                    run_on_commit):
    settings.EXPLAINER_STEPS_IN_FLIGHT_PER_USER = 2
    with run_on_commit():
        jobs = [job_create(owner=user, dataset=zoo, classifiers=["knn"], explainers=["lime"], rows={"ids": [0]},
                           params=FAST) for _ in range(3)]
    assert [step_id for _, step_id, _ in enqueued] == list(
        Step.objects.filter(job__in=jobs[:2]).order_by("pk").values_list("pk", flat=True))  # oldest jobs first
    waiting = Step.objects.get(job=jobs[2])
    assert waiting.queued_at is None  # waits in the database, not in the queue
    assert pipeline.steps_feed(owner_id=user.pk) == 0  # still two in the queue
    Step.objects.filter(job=jobs[0]).update(status="done")
    assert pipeline.steps_feed(owner_id=user.pk) == 1
    assert enqueued[-1] == ("train", waiting.pk, "celery")


def test_another_users_job_is_queued_ahead_of_a_burst_it_came_after(zoo, other_zoo, user, other_user, settings,
                                                                     enqueued, run_on_commit):
    """Bob submits after Alice's burst; his step is in the queue before Alice's third, whatever her burst holds."""
    settings.EXPLAINER_STEPS_IN_FLIGHT_PER_USER = 2
    with run_on_commit():
        alice = [job_create(owner=user, dataset=zoo, classifiers=["knn"], explainers=["lime"], rows={"ids": [0]},
                            params=FAST) for _ in range(3)]
        job_create(owner=other_user, dataset=other_zoo, classifiers=["knn"], explainers=["lime"], rows={"ids": [0]},
                   params=FAST)
    Step.objects.filter(job=alice[0]).update(status="done")  # one of Alice's steps ends: she sends her next
    pipeline.steps_feed(owner_id=user.pk)
    assert sent_jobs(enqueued) == ["alice", "alice", "mallory", "alice"]


def test_a_step_the_queue_refuses_waits_unqueued_and_the_sweep_sends_it(zoo, user, monkeypatch):
    job = job_create(owner=user, dataset=zoo, classifiers=["knn"], explainers=["lime"], rows={"ids": [0]}, params=FAST)
    Job.objects.filter(pk=job.pk).update(status="running")
    explain = Step.objects.get(job=job)  # what a batch whose publish failed looks like (here the training)

    def refuse(**kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(pipeline, "task_send", refuse)
    assert pipeline.steps_feed(owner_id=user.pk) == 0  # the broker restarts: logged, not a failed job
    explain.refresh_from_db()
    assert explain.status == "pending" and explain.queued_at is None
    assert Job.objects.get(pk=job.pk).status == "running"
    sent: list[tuple] = []
    monkeypatch.setattr(pipeline, "task_send", lambda **kwargs: sent.append(kwargs))
    pipeline.jobs_stale_sweep()
    assert sent == [{"kind": "train", "step_id": explain.pk, "queue": "celery"}]
