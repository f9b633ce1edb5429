"""Job services end to end in-process (eager Celery): validation, batches, results, ZIP, cancel, retry safety."""

import io
import json
import zipfile

import pytest
from django.core.files.storage import default_storage

from explainer_site.exceptions import ApplicationError
from explanations.exports import job_zip_fresh
from explanations.models import Explanation, Job, ModelRun, Plot, Step, WhatIf
from explanations.pipeline import steps_run_inline
from explanations.services.job_cancel import job_cancel
from explanations.services.job_create import job_create
from explanations.tasks import step_task_run
from tests.unit_fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db

FAST = {"lime": {"num_samples": 300}, "anchor": {"threshold": 0.9}, "shap": {"background_size": 20}}


def test_job_runs_trains_explains_and_packs(zoo, user, run_on_commit):
    with run_on_commit():
        job = job_create(owner=user, dataset=zoo, classifiers=["random_forest", "logistic_regression"],
                         explainers=["lime", "anchor", "shap"], rows={"names": ["flamingo", "frog"]}, params=FAST)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    rows = set(Explanation.objects.filter(job=job).values_list("row", flat=True))
    assert rows == {23, 25, 26}  # both frogs (the name is not unique) and the flamingo
    assert Explanation.objects.filter(job=job).count() == 2 * 3 * 3
    flamingo = Explanation.objects.get(job=job, classifier="random_forest", explainer="lime", row_name="flamingo")
    assert flamingo.true_label == "Bird" and abs(sum(flamingo.probabilities.values()) - 1) < 1e-4
    assert all(cond.count("=") or "<" in cond or ">" in cond for cond, _ in flamingo.data["weights"])
    assert not any(cond.startswith("x") for cond, _ in flamingo.data["weights"])  # original column names, not x3_2
    assert Plot.objects.filter(job=job, explanation__isnull=False).count() == 18
    kinds = set(Plot.objects.filter(job=job, explanation__isnull=True).values_list("kind", flat=True))
    assert {"confusion_matrix", "shap_summary", "shap_importance", "lime_importance"} <= kinds
    run = ModelRun.objects.get(job=job, classifier="random_forest")
    assert 0 <= run.metrics["accuracy"] <= 1 and run.units_done == run.units_total
    with default_storage.open(job_zip_fresh(job=job), "rb") as handle:  # packed at the first download
        archive = zipfile.ZipFile(io.BytesIO(handle.read()))
    names = archive.namelist()
    assert {"explanations.csv", "explanations.json", "manifest.json"} <= set(names)
    assert sum(n.endswith(".png") for n in names) == sum(n.endswith(".svg") for n in names) == Plot.objects.filter(job=job).count()
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["dataset"]["sha256"] == zoo.sha256 and manifest["seeds"]["split_and_models"] == 0
    assert manifest["library_versions"]["shap"] and manifest["parameters"]["lime"]["num_samples"] == 300
    assert len(json.loads(archive.read("explanations.json"))) == 18


def steps_run_again(job: Job, steps) -> None:
    """Every given step delivered once more (as after the sweeper handed it back), run right here in order."""
    Job.objects.filter(pk=job.pk).update(status="running")
    with steps_run_inline():
        for step in steps:
            Step.objects.filter(pk=step.pk).update(status="pending", heartbeat_at=None)
            step_task_run(step.pk, worker="again", task_id="")


def test_rerunning_every_step_of_a_finished_job_redoes_nothing(zoo, user, run_on_commit):
    with run_on_commit():
        job = job_create(owner=user, dataset=zoo, classifiers=["decision_tree"], explainers=["lime"],
                         rows={"ids": [0, 1]}, params=FAST)
    before = list(Explanation.objects.filter(job=job).values_list("pk", flat=True))
    plots = list(Plot.objects.filter(job=job, explanation__isnull=False).values_list("pk", flat=True))
    fitted = ModelRun.objects.get(job=job).model_file.name
    steps_run_again(job, Step.objects.filter(job=job).order_by("pk"))
    assert list(Explanation.objects.filter(job=job).values_list("pk", flat=True)) == before
    assert list(Plot.objects.filter(job=job, explanation__isnull=False).values_list("pk", flat=True)) == plots
    assert ModelRun.objects.get(job=job).model_file.name == fitted  # the model was saved once
    assert sorted(Step.objects.filter(job=job).values_list("key", flat=True)) == [  # each made once
        "explain:decision_tree:lime:0", "explain:decision_tree:lime:1", "job_finish", "run_finish:decision_tree",
        "train:decision_tree", "trust:decision_tree:lime:0", "trust:decision_tree:lime:1", "whatif:0", "whatif:1",
        "whatif:test_rows"]  # two rows, two batches (EXPLAINER_BATCHES_MIN): the worker processes share them
    assert WhatIf.objects.filter(job=job).count() == 3 * 3  # partial dependence and two rows, 3 features each
    assert Job.objects.get(pk=job.pk).status == "succeeded"


def test_missing_rows_are_filled_in_on_retry(zoo, user, run_on_commit):
    with run_on_commit():
        job = job_create(owner=user, dataset=zoo, classifiers=["naive_bayes"], explainers=["lime"],
                         rows={"ids": [3, 4, 5]}, params=FAST)
    Explanation.objects.filter(job=job, row=5).delete()
    steps_run_again(job, Step.objects.filter(job=job, kind="explain"))
    assert sorted(Explanation.objects.filter(job=job).values_list("row", flat=True)) == [3, 4, 5]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"classifiers": []}, "classifiers"),
        ({"classifiers": ["magic_forest"]}, "classifiers"),
        ({"explainers": ["oracle"]}, "explainers"),
        ({"rows": {"ids": [5000]}}, "rows"),
        ({"rows": {"ids": ["x"]}}, "rows"),
        ({"rows": {"names": ["unicorn"]}}, "rows"),
        ({"rows": {"random": 0}}, "rows"),
        ({"rows": {"random": 2, "ids": [1]}}, "rows"),
        ({"params": {"lime": {"num_samples": -5}}}, "lime"),
        ({"params": {"anchor": {"threshold": 2}}}, "anchor"),
        ({"params": {"lime": {"bogus": 1}}}, "lime"),
        ({"params": {"test_size": 0.9}}, "test_size"),
    ],
)
def test_bad_job_requests_name_the_field(zoo, user, kwargs, field):
    request = {"classifiers": ["random_forest"], "explainers": ["lime", "anchor"], "rows": {"random": 2}, "params": {}} | kwargs
    with pytest.raises(ApplicationError) as error:
        job_create(owner=user, dataset=zoo, **request)
    assert error.value.extra["field"] == field
    assert not Job.objects.exists()


def test_same_request_key_makes_one_job(zoo, user):
    first = job_create(owner=user, dataset=zoo, classifiers=["knn"], explainers=["lime"], request_key="abc")
    second = job_create(owner=user, dataset=zoo, classifiers=["knn"], explainers=["lime"], request_key="abc")
    assert first.pk == second.pk and Job.objects.count() == 1


def test_cancelled_job_stops_before_the_next_batch(zoo, user):
    job = job_create(owner=user, dataset=zoo, classifiers=["knn"], explainers=["lime"], rows={"ids": [0, 1]}, params=FAST)
    job_cancel(job=job)
    train = Step.objects.get(job=job, kind="train")
    assert train.status == "cancelled"  # no step starts after a cancel
    step_task_run(train.pk, worker="late", task_id="late-delivery")
    job.refresh_from_db()
    assert job.status == "cancelled" and not Explanation.objects.filter(job=job).exists()
    assert ModelRun.objects.get(job=job).status == "pending" and not Step.objects.filter(job=job, status="running")


def test_misclassified_rows_are_wrong_predictions(heart, user, run_on_commit):
    with run_on_commit():
        job = job_create(owner=user, dataset=heart, classifiers=["logistic_regression"], explainers=["shap"],
                         rows={"misclassified": 3}, params=FAST)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    explanations = list(Explanation.objects.filter(job=job))
    assert len(explanations) == 3
    assert all(e.predicted != e.true_label and not e.in_train for e in explanations)


def test_big_tables_train_and_test_on_samples(heart, settings):
    from explanations.job_data import job_data_build

    settings.EXPLAINER_MAX_TRAIN_ROWS, settings.EXPLAINER_MAX_TEST_ROWS = 100, 40
    data = job_data_build(dataset=heart, schema=heart.schema, test_size=0.25, seed=3)
    assert len(data.train_idx) == 100 and len(data.test_idx) == 40
    assert not set(data.train_idx) & set(data.test_idx)
    assert any("random sample of 100" in note for note in data.notes)
    again = job_data_build(dataset=heart, schema=heart.schema, test_size=0.25, seed=3)
    assert list(again.train_idx) == list(data.train_idx)  # every task of a job rebuilds the same split


def test_seed_free_explanations_are_trusted_where_explained_and_drawn_once(zoo, user, run_on_commit, monkeypatch):
    """Exact TreeSHAP answers the same whatever its seed: its trust scores are measured in the explain step, so its
    picture is drawn once, with them, and its trust step finds nothing to do; LIME's are measured in their own step."""
    import sys

    from explanations.insights import TrustMeter

    measured: list[tuple[str, str]] = []
    measure = TrustMeter.measure

    def recorded(self, results):
        measured.append((self.method, sys._getframe(1).f_code.co_name))
        return measure(self, results)

    monkeypatch.setattr(TrustMeter, "measure", recorded)
    with run_on_commit():
        job = job_create(owner=user, dataset=zoo, classifiers=["random_forest"], explainers=["lime", "shap"],
                         rows={"ids": [0, 1]}, params=FAST)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    shap = list(Explanation.objects.filter(job=job, explainer="shap"))
    assert len(shap) == 2 and all(e.data["algorithm"] == "tree" for e in shap)
    assert all(e.trust.get("stability_seeds") is not None and e.trust.get("deletion_auc") is not None for e in shap)
    assert sorted(measured) == [("lime", "batch_trust")] * 2 + [("shap", "batch_explain")] * 2
    assert all(Plot.objects.filter(explanation=e).count() == 1 for e in Explanation.objects.filter(job=job))
