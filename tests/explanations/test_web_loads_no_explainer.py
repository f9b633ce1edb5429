"""The web process shows a finished job (its pages, its estimate, its downloads) without loading an explainer
class: those import LIME, shap, numba, matplotlib and, for images, torch, which have no place in a web worker.
What the pages show of an explanation in words is written by the worker when it saves it."""

from __future__ import annotations

import pytest

from explanations.ml.catalogue import ExplainerEntry
from explanations.models import Explanation, Job
from tests.unit_fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_explainer_loads(monkeypatch):
    loaded: list[str] = []

    def refuse(entry: ExplainerEntry):
        loaded.append(entry.key)
        raise AssertionError(f"the web process loaded the {entry.key} explainer class")

    monkeypatch.setattr(ExplainerEntry, "load", refuse)
    return loaded


def test_pages_estimate_and_downloads_load_no_explainer_class(finished, client, user, no_explainer_loads):
    client.force_login(user)
    job = finished
    Job.objects.filter(pk=job.pk).update(result_zip="")  # the next download packs the ZIP again, here
    for url in (f"/jobs/{job.pk}/results/", f"/jobs/{job.pk}/rows/0/", f"/jobs/{job.pk}/report.html", f"/jobs/{job.pk}/download.zip",
                f"/api/jobs/{job.pk}/explanations/", f"/jobs/new/?dataset={job.dataset_id}"):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    estimate = client.get("/jobs/estimate/", {"dataset": job.dataset_id, "classifiers": ["decision_tree"],
                                              "explainers": ["lime", "anchor", "shap"], "rows_mode": "random",
                                              "rows_random": "3"})
    assert estimate.status_code == 200
    assert no_explainer_loads == []


def test_the_csv_cell_is_the_explainers_own_words_saved_by_the_worker(finished):
    from explanations.exports import explanation_summary_text
    from explanations.ml.explainers import explainer_for

    for explanation in Explanation.objects.filter(job=finished):
        stored = explanation.meta["summary_text"]
        assert stored == explainer_for("lime", "tabular").summary_text(explanation.data) and stored
        assert explanation_summary_text(explanation) == stored
