"""Issue 17 item 11: a view averaged over a handful of explained rows says so; a global one says how many test
rows it saw (on the plot and in its alt text)."""

import pytest

from explanations.models import Plot
from explanations.services.job_create import job_create
from tests.unit_fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db


def global_plots(job) -> dict[str, Plot]:
    return {p.kind: p for p in Plot.objects.filter(job=job, explanation=None)}


def test_exact_shap_speaks_of_many_test_rows_and_lime_of_the_explained_ones(heart, user, run_on_commit):
    with run_on_commit():
        job = job_create(owner=user, dataset=heart, classifiers=["decision_tree"], explainers=["lime", "shap"],
                         rows={"ids": [0, 1, 2]}, params={"lime": {"num_samples": 300}})
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    plots = global_plots(job)
    summary = plots["shap_summary"]
    assert summary.title.startswith("SHAP summary from ") and "test rows" in summary.title
    rows = int(summary.title.split("from ")[1].split(" ")[0])
    assert rows >= 30 and f"from {rows} test rows" in summary.alt
    assert f"from {rows} test rows" in summary.svg.open("rb").read().decode()  # written on the plot itself
    # the extra rows were a step of their own, beside the explanations; the global views only read them
    from explanations.models import Step
    from explanations.summaries import summary_rows_load

    step = Step.objects.get(job=job, kind="summary")
    assert (step.key, step.status) == ("summary:decision_tree:shap", "done")
    extra = summary_rows_load(job=job, run=step.run, key="shap")
    assert len(extra) == rows - 3 and not {row for row, _ in extra} & {0, 1, 2}
    assert Step.objects.get(job=job, kind="run_finish").started_at >= step.finished_at
    lime = plots["lime_importance"]
    assert lime.title == "LIME weights over the 3 explained rows — Decision tree"
    assert "global" not in lime.alt and "over the 3 explained rows" in lime.alt


def test_the_whatif_steps_rank_features_as_the_global_views_do_before_those_are_drawn(heart, user, run_on_commit):
    """The what-if steps start once the rows are explained (beside the trust steps and the global views): the
    importance they rank by, measured from the saved explanations and summary rows, is the one the global views
    store afterwards, to the bit, so the features drawn do not depend on which step ran first."""
    from explanations.job_steps import job_data
    from explanations.models import ModelRun, Step, WhatIf
    from explanations.summaries import run_importance_measure
    from explanations.whatifs import whatif_features

    with run_on_commit():
        job = job_create(owner=user, dataset=heart, classifiers=["decision_tree", "logistic_regression"],
                         explainers=["lime", "shap"], rows={"ids": [0, 1, 2]}, params={"lime": {"num_samples": 300}})
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    features = job_data(job).space.feature_names
    for run in ModelRun.objects.filter(job=job):
        stored = run.metrics["importance"]
        assert set(stored) == {"lime", "shap"}
        assert run_importance_measure(job=job, run=run, features=features) == stored["shap"]  # SHAP's comes first
    chosen = whatif_features(job=job, data=job_data(job))
    ModelRun.objects.filter(job=job).update(status="trained", metrics={})  # as while the global views are pending
    assert whatif_features(job=job, data=job_data(job)) == chosen and len(chosen) == 3
    assert set(WhatIf.objects.filter(job=job).values_list("feature", flat=True)) == set(chosen)
    last_explained = max(s.finished_at for s in Step.objects.filter(job=job, kind__in=["explain", "summary"]))
    assert min(s.started_at for s in Step.objects.filter(job=job, kind="whatif")) >= last_explained


def test_sampled_shap_on_three_rows_is_not_called_a_summary(heart, user, run_on_commit):
    with run_on_commit():
        job = job_create(owner=user, dataset=heart, classifiers=["knn"], explainers=["shap"], rows={"ids": [0, 1, 2]},
                         params={"shap": {"nsamples": 100, "background_size": 20}})
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    summary = global_plots(job)["shap_summary"]
    assert summary.title == "SHAP values over the 3 explained rows — K nearest neighbours" or (
        summary.title.startswith("SHAP values over the 3 explained rows")), summary.title
    assert "global" not in summary.alt
    from explanations.models import Step
    from explanations.summaries import summary_rows_load

    assert summary_rows_load(job=job, run=Step.objects.get(job=job, kind="summary").run, key="shap") == []


def test_two_rows_draw_no_average_at_all(heart, user, run_on_commit):
    with run_on_commit():
        job = job_create(owner=user, dataset=heart, classifiers=["logistic_regression"], explainers=["lime"],
                         rows={"ids": [0, 1]}, params={"lime": {"num_samples": 300}})
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert "lime_importance" not in global_plots(job)
    assert job.runs.get().metrics["importance"]["lime"]  # what-if still picks its features from it
