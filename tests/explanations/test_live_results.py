"""Issue 17: the results page of a running job fills in as explanations land (its changing parts as a fragment,
each with a version the page compares), says what runs and how long is left, and every plot can be enlarged."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from explanations.models import Explanation, Job, JobStatus, ModelRun, ModelRunStatus
from tests.unit_fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db


@pytest.fixture
def running(zoo, user) -> Job:
    job = Job.objects.create(owner=user, dataset=zoo, classifiers=["random_forest"], explainers=["lime"],
                             rows_spec={"ids": [0, 1, 2]}, params={"test_size": 0.25, "seed": 0}, schema=zoo.schema,
                             status=JobStatus.RUNNING, started_at=timezone.now() - timedelta(seconds=20),
                             stage="Explaining rows 1–3 of 3 with LIME — Random forest")
    ModelRun.objects.create(job=job, classifier="random_forest", rows=[0, 1, 2], status=ModelRunStatus.TRAINED,
                            started_at=timezone.now() - timedelta(seconds=20), metrics={"accuracy": 0.9, "n_test": 26},
                            stage="Explaining rows 1–3 of 3 with LIME — Random forest")
    return job


def explain(job: Job, row: int, confidence: float) -> None:
    Explanation.objects.create(job=job, classifier="random_forest", explainer="lime", row=row, predicted="Mammal",
                               true_label="Mammal", probabilities={"Mammal": confidence, "Bird": 1 - confidence})


def version(html: str, block: str) -> str:
    return re.search(rf'id="{block}" data-version="([^"]*)"', html).group(1)


def test_a_running_jobs_results_page_says_what_runs_and_updates_itself(running, client, user):
    explain(running, 0, 0.9)
    client.force_login(user)
    html = client.get(f"/jobs/{running.pk}/results/").content.decode()
    live = re.search(r'<p class="live-status" id="live-status"[^>]*>', html).group(0)
    assert 'role="status"' in live and 'aria-live="polite"' in live
    assert re.search(r"Explaining rows 1–3 of 3 with LIME — Random forest — (about \d+ (s|min)|a few seconds) left · "
                     r"1 explanation so far", html)
    assert "js/results_live.js" in html
    assert '<noscript><meta http-equiv="refresh" content="5"></noscript>' in html  # without script: the reload


def test_the_fragment_keeps_the_users_sort_and_its_versions_move_as_rows_land(running, client, user):
    explain(running, 0, 0.6)
    client.force_login(user)
    url = f"/jobs/{running.pk}/results/?tab=random_forest&sort=-confidence&fragment=live"
    first = client.get(url).content.decode()
    assert "<html" not in first and 'id="live-actions"' in first and 'id="live-trust"' in first
    assert first.count("data-live-block") == 5  # actions, the classifier's metrics, plots and rows, trust
    before = version(first, "live-rows-random_forest")
    explain(running, 2, 0.95)
    second = client.get(url).content.decode()
    assert version(second, "live-rows-random_forest") != before
    assert version(second, "live-summary-random_forest") == version(first, "live-summary-random_forest")  # no flicker
    assert version(second, "live-metrics-random_forest") != version(first, "live-metrics-random_forest")  # the count
    rows = re.findall(r'href="/jobs/\d+/rows/(\d+)/"', second)
    assert rows == ["2", "0"]  # most confident first: the sort the page was showing
    assert '<option value="-confidence" selected>' in second


def test_a_finished_jobs_page_neither_polls_nor_reloads(finished, client, user):
    client.force_login(user)
    html = client.get(f"/jobs/{finished.pk}/results/").content.decode()
    assert 'id="live-status"' not in html and "results_live.js" not in html and "http-equiv" not in html


def test_every_plot_can_be_opened_large(finished, client, user):
    client.force_login(user)
    for url in (f"/jobs/{finished.pk}/results/", f"/jobs/{finished.pk}/rows/0/"):
        html = client.get(url).content.decode()
        cards = html.count('<figure class="plot-card">')
        assert cards and html.count('aria-label="Enlarge: ') == cards, url
        link = re.search(r'<a class="button small secondary" href="(/plots/\d+\.png)" data-enlarge', html)
        assert link and client.get(link.group(1)).status_code == 200
