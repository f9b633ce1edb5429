"""Faults in-process: a dead queue at submit, orphaned and lost runs (the stale-job sweeper), duplicate
deliveries, time limits, a full disk. The same faults with real processes are in ``test_faults.py``."""

from __future__ import annotations

import errno
from datetime import timedelta
from pathlib import Path

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.core.files.storage import FileSystemStorage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from explanations import job_steps, pipeline, tasks
from explanations.ml.explainers.base import ExplainerError
from explanations.models import Explanation, Job, ModelRun, Plot, Step
from explanations.pipeline import jobs_stale_sweep, steps_run_inline
from explanations.services.job_create import job_create
from explanations.tasks import step_task_run
from tests.reliability import corpus
from tests.unit_fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db

FAST = {"lime": {"num_samples": 200}}
LONG_AGO = timedelta(hours=7)


@pytest.fixture(autouse=True)
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def table(user):
    from datasets.services import dataset_create, dataset_schema_set

    dataset = dataset_create(owner=user, file=SimpleUploadedFile("table.csv", corpus.clean_csv()))
    return dataset_schema_set(dataset=dataset, label="label", features=["age", "city", "income"], row_name="name")


@pytest.fixture
def enqueued(monkeypatch) -> list[tuple]:
    """Capture what would go to the broker (task, step id, queue) instead of running it."""
    sent: list[tuple] = []

    def capture(args, queue=None, **options):
        assert options == {"time_limit": None, "soft_time_limit": None}  # the worker's own limits apply
        sent.append((*args, queue))

    for name in pipeline.TASK_NAMES.values():
        monkeypatch.setattr(getattr(tasks, name), "apply_async", capture)
    monkeypatch.setattr(settings_module(), "CELERY_TASK_ALWAYS_EAGER", False)  # through the real send
    return sent


def settings_module():
    from django.conf import settings

    return settings


def new_job(user, table, **kwargs) -> Job:
    request = {"classifiers": ["decision_tree"], "explainers": ["lime"], "rows": {"ids": [0, 1, 2, 3]}, "params": FAST}
    return job_create(owner=user, dataset=table, **(request | kwargs))


# ---------------------------------------------------------------- the queue is down at submit


@pytest.fixture
def dead_broker(monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    for name in pipeline.TASK_NAMES.values():
        monkeypatch.setattr(getattr(tasks, name), "apply_async", refuse)
    monkeypatch.setattr(settings_module(), "CELERY_TASK_ALWAYS_EAGER", False)


@pytest.mark.django_db(transaction=True)  # on_commit runs for real: the enqueue happens after the commit
def test_dead_broker_at_submit_is_a_503_and_leaves_no_job(api, table, dead_broker):
    response = api.post("/api/jobs/", {"dataset": table.pk, "classifiers": ["decision_tree", "knn"],
                                       "explainers": ["lime"], "params": FAST}, format="json")
    assert response.status_code == 503
    assert response.json()["error"] == ("The job queue is unavailable right now, so nothing was started. "
                                        "Try again in a minute.")
    assert not Job.objects.exists() and not ModelRun.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_dead_broker_at_submit_is_a_message_on_the_page(client, user, table, dead_broker):
    client.force_login(user)
    response = client.post("/jobs/new/", {"dataset": table.pk, "classifiers": ["decision_tree"], "explainers": ["lime"],
                                          "rows_mode": "random", "request_key": "k-1"})
    assert response.status_code == 503 and b"The job queue is unavailable right now" in response.content
    assert not Job.objects.exists()


def test_one_job_per_request_key_even_past_the_check(user, table, enqueued):
    first = new_job(user, table, request_key="double-click")
    assert new_job(user, table, request_key="double-click").pk == first.pk
    with pytest.raises(IntegrityError), transaction.atomic():  # a racing second request hits the constraint
        Job.objects.create(owner=user, dataset=table, request_key="double-click")
    Job.objects.create(owner=user, dataset=table, request_key="")  # no key: no constraint
    Job.objects.create(owner=user, dataset=table, request_key="")
    assert Job.objects.filter(request_key="double-click").count() == 1


# ---------------------------------------------------------------- the stale-job sweeper


def make_running(job: Job, *, heartbeat_age: timedelta, attempts: int = 1, task_id: str = "t-1") -> Step:
    Job.objects.filter(pk=job.pk).update(status="running", started_at=timezone.now() - heartbeat_age)
    Step.objects.filter(job=job).update(status="running", task_id=task_id, attempts=attempts, queued_at=timezone.now(),
                                        heartbeat_at=timezone.now() - heartbeat_age)
    return Step.objects.get(job=job)


def test_sweeper_requeues_a_step_whose_worker_went_silent(user, table, enqueued):
    job = new_job(user, table)
    enqueued.clear()
    step = make_running(job, heartbeat_age=LONG_AGO)
    assert jobs_stale_sweep() == {"requeued": [job.pk], "failed": []}
    assert enqueued == [(step.pk, "celery")]
    step.refresh_from_db()
    assert step.status == "pending" and step.heartbeat_at is None and step.attempts == 1 and step.queued_at
    job.refresh_from_db()
    assert job.status == "running" and "queued again" in job.stage
    assert jobs_stale_sweep() == {"requeued": [], "failed": []}  # the next sweep leaves it to the new task
    assert len(enqueued) == 1


def test_sweeper_leaves_live_and_finished_work_alone(user, table, enqueued):
    live = new_job(user, table)
    make_running(live, heartbeat_age=timedelta(seconds=5))
    waiting = new_job(user, table)  # queued a moment ago, not started: in the queue
    Step.objects.filter(job=waiting).update(queued_at=timezone.now())
    done = new_job(user, table)
    make_running(done, heartbeat_age=LONG_AGO)
    Job.objects.filter(pk=done.pk).update(status="succeeded")
    enqueued.clear()
    assert jobs_stale_sweep() == {"requeued": [], "failed": []} and enqueued == []
    assert {j.status for j in Job.objects.filter(pk__in=[live.pk, waiting.pk])} == {"running", "queued"}


def test_sweeper_requeues_a_message_lost_before_it_started(user, table, enqueued):
    job = new_job(user, table)
    Step.objects.filter(job=job).update(queued_at=timezone.now() - LONG_AGO)
    enqueued.clear()
    assert jobs_stale_sweep()["requeued"] == [job.pk] and len(enqueued) == 1
    assert jobs_stale_sweep(queue_timeout=timedelta(seconds=1))["requeued"] == []  # just queued again


def test_sweeper_fails_a_job_that_keeps_losing_its_worker(user, table, enqueued, settings):
    settings.EXPLAINER_JOB_MAX_ATTEMPTS = 3
    job = new_job(user, table)
    make_running(job, heartbeat_age=LONG_AGO, attempts=3)
    enqueued.clear()
    assert jobs_stale_sweep() == {"requeued": [], "failed": [job.pk]} and enqueued == []
    job.refresh_from_db()
    assert job.status == "failed" and job.finished_at
    assert "Decision tree stopped before finishing, 3 times" in job.error and "Try fewer rows" in job.error


def test_sweep_command_reports_what_it_did(user, table, enqueued, capsys):
    job = new_job(user, table)
    make_running(job, heartbeat_age=timedelta(minutes=5))
    call_command("jobs_sweep", "--stale-seconds", "60")
    assert f"Re-queued steps of jobs [{job.pk}]" in capsys.readouterr().out


def test_a_dead_workers_batch_is_redone_and_nothing_else(user, table, run_on_commit, settings):
    """A worker died while explaining the second batch: the sweep hands that batch to another worker; the first
    batch's explanations, plots and finish time stay as they were, and each row is explained once."""
    settings.EXPLAINER_BATCH_SIZE = 2
    with run_on_commit():
        job = new_job(user, table)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    first, second = Step.objects.filter(job=job, kind="explain").order_by("pk")
    kept = dict(Explanation.objects.filter(job=job, row__in=first.rows).values_list("row", "pk"))
    Explanation.objects.filter(job=job, row__in=second.rows).delete()  # as if its worker died mid-batch
    Step.objects.filter(job=job, kind__in=["trust", "run_finish", "job_finish"], rows=second.rows).delete()
    Step.objects.filter(job=job, kind__in=["run_finish", "job_finish"]).delete()
    Job.objects.filter(pk=job.pk).update(status="running", finished_at=None)
    ModelRun.objects.filter(job=job).update(status="trained")
    Step.objects.filter(pk=second.pk).update(status="running", heartbeat_at=timezone.now() - LONG_AGO)
    with steps_run_inline():
        assert jobs_stale_sweep()["requeued"] == [job.pk]
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    rows = list(Explanation.objects.filter(job=job).values_list("row", flat=True))
    assert sorted(rows) == [0, 1, 2, 3]  # each row once
    assert dict(Explanation.objects.filter(job=job, row__in=first.rows).values_list("row", "pk")) == kept
    assert Step.objects.get(pk=first.pk).finished_at == first.finished_at  # the finished batch was not redone
    assert Step.objects.get(pk=second.pk).attempts == 2
    assert Plot.objects.filter(job=job, explanation__isnull=False).count() == 4


def test_values_past_float32_fail_the_job_with_a_sentence(user, table, run_on_commit):
    """Tree models compare features as float32: a finite 1e300 was "Input X contains infinity" in the log and
    "Something went wrong" on the page."""
    from datasets.services import dataset_create, dataset_schema_set

    rows = "\n".join(f"{(i + 1) * 1e300},{i % 7},{'yes' if i % 2 else 'no'}" for i in range(40))
    dataset = dataset_create(owner=user, file=SimpleUploadedFile("huge.csv", f"wealth,score,label\n{rows}\n".encode()))
    dataset = dataset_schema_set(dataset=dataset, label="label", features=["wealth", "score"])
    with run_on_commit():
        job = job_create(owner=user, dataset=dataset, classifiers=["decision_tree"], explainers=["lime"],
                         rows={"ids": [1]}, params=FAST)
    job.refresh_from_db()
    assert job.status == "failed"
    assert "wealth" in job.error and "rescale" in job.error.lower() and "Something went wrong" not in job.error, job.error


# ---------------------------------------------------------------- duplicate deliveries


def test_a_second_delivery_while_the_first_is_alive_does_nothing(user, table, enqueued):
    job = new_job(user, table)
    step = make_running(job, heartbeat_age=timedelta(seconds=1), task_id="first")
    step_task_run(step.pk, worker="w2", task_id="second")
    assert not Explanation.objects.filter(job=job).exists() and ModelRun.objects.get(job=job).status == "pending"
    assert Step.objects.get(pk=step.pk).task_id == "first"


def test_the_same_message_redelivered_after_its_worker_died_takes_over(user, table, enqueued):
    job = new_job(user, table)
    step = make_running(job, heartbeat_age=timedelta(seconds=1), task_id="same")
    step_task_run(step.pk, worker="w1", task_id="same")
    step.refresh_from_db()
    assert step.status == "done" and step.attempts == 2 and ModelRun.objects.get(job=job).status == "trained"


def test_a_step_started_too_often_fails_instead_of_looping(user, table, enqueued, settings):
    settings.EXPLAINER_JOB_MAX_ATTEMPTS = 2
    job = new_job(user, table)
    step = make_running(job, heartbeat_age=timedelta(seconds=1), task_id="same", attempts=2)
    step_task_run(step.pk, worker="w1", task_id="same")
    job.refresh_from_db()
    assert job.status == "failed" and "stopped before finishing, 2 times" in job.error


def test_a_task_for_a_deleted_job_ends_quietly(user, table, enqueued):
    job = new_job(user, table)
    step_id = Step.objects.get(job=job).pk
    job.delete()
    step_task_run(step_id, worker="w1", task_id="x")  # no exception


def test_the_last_batch_of_two_ending_at_once_makes_the_next_step_once(user, table, enqueued, settings):
    """Both last batches see every batch done: each calls the join, one global-views step is made and sent."""
    settings.EXPLAINER_BATCH_SIZE = 2
    job = new_job(user, table)
    train = Step.objects.get(job=job)
    step_task_run(train.pk, worker="w1", task_id="t-train")
    explains = list(Step.objects.filter(job=job, kind="explain"))
    assert len(explains) == 2
    Step.objects.filter(job=job, kind="explain").update(status="done")
    Step.objects.bulk_create([Step(job=job, run=e.run, kind="trust", key="trust" + e.key.removeprefix("explain"),
                                   explainer=e.explainer, rows=e.rows, status="done") for e in explains])
    for _ in explains:  # each batch's ending runs the join
        pipeline.job_advance(job_id=job.pk)
    finishes = Step.objects.filter(job=job, kind="run_finish")
    assert finishes.count() == 1
    pipeline.steps_feed(owner_id=user.pk)
    pipeline.steps_feed(owner_id=user.pk)
    assert [step_id for step_id, _ in enqueued].count(finishes.get().pk) == 1


@pytest.mark.parametrize(("explainers", "early"), [(["lime", "anchor"], True), (["anchor"], False)])
def test_the_whatif_steps_start_beside_the_trust_steps_when_the_ranking_is_known(user, table, enqueued, explainers,
                                                                                 early):
    """With an explainer that has a model-wide view (LIME here) the what-if curves are drawn while the trust
    reruns go on; with Anchors alone the ranking reads the trust scores, so they wait for the global views. The
    job finishes only after both."""
    job = new_job(user, table, explainers=explainers)
    step_task_run(Step.objects.get(job=job).pk, worker="w1", task_id="t-train")
    Step.objects.filter(job=job, kind__in=["explain", "summary"]).update(status="done")
    pipeline.job_advance(job_id=job.pk)
    kinds = set(Step.objects.filter(job=job).values_list("kind", flat=True))
    assert "trust" in kinds and "run_finish" not in kinds and "job_finish" not in kinds
    assert ("whatif" in kinds) is early
    Step.objects.filter(job=job, kind__in=["trust", "whatif"]).update(status="done")
    pipeline.job_advance(job_id=job.pk)
    assert Step.objects.filter(job=job, kind="run_finish").exists()
    assert not Step.objects.filter(job=job, kind="job_finish").exists()  # the global views are still to be drawn
    Step.objects.filter(job=job, kind="run_finish").update(status="done")
    pipeline.job_advance(job_id=job.pk)
    assert Step.objects.filter(job=job, kind="whatif").exists()
    assert Step.objects.filter(job=job, kind="job_finish").exists() is early  # late ones are drawn first
    Step.objects.filter(job=job, kind="whatif").update(status="done")
    pipeline.job_advance(job_id=job.pk)
    assert Step.objects.filter(job=job, kind="job_finish").count() == 1


def test_a_batch_explained_twice_saves_nothing_twice(user, table, enqueued, settings):
    settings.EXPLAINER_BATCH_SIZE = 4
    settings.EXPLAINER_BATCHES_MIN = 1  # the job's 4 rows in one batch
    job = new_job(user, table)
    step_task_run(Step.objects.get(job=job).pk, worker="w1", task_id="t-train")
    batch = Step.objects.get(job=job, kind="explain")
    step_task_run(batch.pk, worker="w1", task_id="t-1")
    saved = sorted(Explanation.objects.filter(job=job).values_list("pk", flat=True))
    plots = Plot.objects.filter(job=job, explanation__isnull=False).count()
    Step.objects.filter(pk=batch.pk).update(status="pending")  # redelivered, e.g. by a sweep that thought it lost
    step_task_run(batch.pk, worker="w2", task_id="t-2")
    assert sorted(Explanation.objects.filter(job=job).values_list("pk", flat=True)) == saved and len(saved) == 4
    assert Plot.objects.filter(job=job, explanation__isnull=False).count() == plots == 4
    assert Step.objects.filter(job=job, kind="trust").count() == 1


# ---------------------------------------------------------------- time limits and full disks


@pytest.mark.parametrize("wrapped", [False, True], ids=["raised", "wrapped-by-a-library"])
def test_time_limit_ends_failed_with_the_limit_and_advice(user, table, run_on_commit, monkeypatch, settings, wrapped):
    settings.CELERY_TASK_SOFT_TIME_LIMIT = 120

    def slow(*args, **kwargs):
        try:
            raise SoftTimeLimitExceeded()
        except SoftTimeLimitExceeded as exc:
            if wrapped:
                raise ExplainerError("LIME failed: SoftTimeLimitExceeded()") from exc
            raise

    monkeypatch.setattr(job_steps, "dataset_frame_load", slow)
    job_steps.DATA_CACHE.clear()
    with run_on_commit():
        job = new_job(user, table)
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.error == ("Working on Decision tree took longer than 2 minutes, this server's limit for one step of a "
                         "job; try fewer rows or samples.")


def test_time_limit_holds_even_when_the_soft_limit_signal_was_swallowed(user, table, run_on_commit, monkeypatch, settings):
    """Celery's soft limit is an asynchronous exception, and one landing in a logging handler or a library's
    ``except Exception`` is lost; the step's own deadline still ends the job at the next row."""
    import time

    settings.CELERY_TASK_SOFT_TIME_LIMIT = 120
    settings.EXPLAINER_BATCH_SIZE = 2
    real_monotonic, saved = time.monotonic, []
    original_save = job_steps.explanation_save

    def save_then_time_passes(**kwargs):
        saved.append(kwargs["result"].row)
        return original_save(**kwargs)

    monkeypatch.setattr(job_steps, "explanation_save", save_then_time_passes)
    monkeypatch.setattr(time, "monotonic", lambda: real_monotonic() + (600 if saved else 0))
    with run_on_commit():
        job = new_job(user, table)
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.error.startswith("Working on Decision tree (lime, rows 0–1) took longer than 2 minutes, this server's limit "
                                "for one step"), job.error
    assert sorted(Explanation.objects.filter(job=job).values_list("row", flat=True)) == [0]  # what was saved is kept


def test_a_job_whose_steps_together_pass_its_budget_fails_with_the_budget(user, table, run_on_commit, monkeypatch,
                                                                         settings):
    """Each step is short; the job's budget (EXPLAINER_JOB_TIME_LIMIT) counts the seconds of its finished steps."""
    settings.EXPLAINER_JOB_TIME_LIMIT = 60
    settings.EXPLAINER_BATCH_SIZE = 2
    used = []
    real_used = tasks.job_seconds_used

    def seconds_used(job_id: int) -> float:  # as if the first batch had taken a minute
        used.append(job_id)
        return real_used(job_id) + (61 if Explanation.objects.filter(job_id=job_id).exists() else 0)

    monkeypatch.setattr(tasks, "job_seconds_used", seconds_used)
    with run_on_commit():
        job = new_job(user, table)
    job.refresh_from_db()
    assert used, "the worker asked for the job's seconds before each step"
    assert job.status == "failed"
    assert job.error == ("The job took longer than 1 minute of work, this server's limit for one job; "
                         "try fewer rows, classifiers, explainers or samples.")
    assert sorted(Explanation.objects.filter(job=job).values_list("row", flat=True)) == [0, 1]  # the first batch


def test_time_limit_under_a_minute_is_said_in_seconds(settings):
    settings.CELERY_TASK_SOFT_TIME_LIMIT = 5
    assert tasks.failure_reason(SoftTimeLimitExceeded(), job_id=0) == (
        "The job took longer than 5 seconds; try fewer rows or samples.")


@pytest.fixture
def disk_full_for(monkeypatch):
    """Make saving files whose name ends with ``suffix`` fail half-way with ENOSPC."""
    original = FileSystemStorage._save

    def install(suffix: str):
        def save(self, name, content):
            if not name.endswith(suffix):
                return original(self, name, content)
            path = Path(self.path(name))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"PK\x03\x04 half an archive")
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(FileSystemStorage, "_save", save)

    return install


def test_full_disk_while_saving_plots_fails_the_job_with_a_reason_and_offers_no_zip(user, api, table, run_on_commit,
                                                                                     disk_full_for, settings):
    disk_full_for(".png")
    with run_on_commit():
        job = new_job(user, table)
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.error == "Results could not be saved: the disk is full. Tell the administrator, then run the job again."
    assert not job.result_zip
    assert not list(Path(settings.MEDIA_ROOT, "jobs", str(job.pk)).glob("*.zip"))
    response = api.get(f"/api/jobs/{job.pk}/download/")
    assert response.status_code == 409 and "not ready" in response.json()["error"]


def test_full_disk_while_packing_the_zip_is_a_sentence_and_leaves_no_partial_archive(user, api, client, table,
                                                                                      run_on_commit, disk_full_for,
                                                                                      settings):
    """The ZIP is packed when downloaded: the job has succeeded, the download says what is wrong."""
    with run_on_commit():
        job = new_job(user, table)
    disk_full_for(".zip")
    response = api.get(f"/api/jobs/{job.pk}/download/")
    assert response.status_code == 503
    assert response.json()["error"].startswith("The ZIP could not be packed: the server's disk is full")
    assert not list(Path(settings.MEDIA_ROOT, "jobs", str(job.pk)).glob("*.zip"))
    client.force_login(user)
    page = client.get(f"/jobs/{job.pk}/download.zip", follow=True)
    assert page.status_code == 200 and b"The ZIP could not be packed" in page.content
    assert Job.objects.get(pk=job.pk).status == "succeeded"


def test_rows_that_need_every_classifiers_predictions_wait_for_the_last_training(user, table, enqueued):
    """Misclassified rows are a join: no classifier's batches exist until every classifier has trained."""
    job = new_job(user, table, classifiers=["decision_tree", "naive_bayes"], rows={"misclassified": 5})
    first, second = Step.objects.filter(job=job, kind="train").order_by("pk")
    step_task_run(first.pk, worker="w1", task_id="t-1")
    assert not Step.objects.filter(job=job, kind="explain").exists()
    assert not ModelRun.objects.filter(job=job, rows_resolved=True).exists()
    step_task_run(second.pk, worker="w2", task_id="t-2")
    runs = list(ModelRun.objects.filter(job=job))
    assert all(run.rows_resolved for run in runs)
    for run in runs:  # each classifier's batches cover exactly its resolved rows
        batched = [r for s in Step.objects.filter(run=run, kind="explain") for r in s.rows]
        assert batched == run.rows
