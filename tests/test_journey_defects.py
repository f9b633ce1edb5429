"""Issue 17's journey defects that pages and the API show without a browser (each failed on beaff0d)."""

import os
import re
import subprocess
import sys

import pytest

from datasets.models import Dataset
from explanations.models import Explanation, Job, Plot
from explanations.services.job_cancel import job_cancel
from explanations.services.job_create import job_create
from explanations.templatetags.job_text import percent
from tests.unit_fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db

FAST = {"lime": {"num_samples": 300}, "anchor": {"threshold": 0.9, "beam_size": 1}}


@pytest.fixture
def finished(zoo, user, run_on_commit) -> Job:
    with run_on_commit():
        job = job_create(owner=user, dataset=zoo, classifiers=["random_forest"], explainers=["lime", "anchor"],
                         rows={"random": 2, "seed": 3}, params=FAST)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    return job


def test_13_a_second_click_on_a_demo_card_opens_the_same_dataset(client, user):
    client.force_login(user)
    first = client.post("/datasets/demo/iris/")
    second = client.post("/datasets/demo/iris/", follow=True)
    assert Dataset.objects.filter(owner=user, is_demo=True).count() == 1
    assert second.redirect_chain[-1][0] == first["Location"] and "already have" in second.content.decode()


def test_13_the_jobs_list_tells_two_jobs_apart(finished, client, user):
    client.force_login(user)
    html = client.get("/jobs/").content.decode()
    assert "Random forest" in html and "random_forest" not in html and "LIME, Anchors" in html
    assert "2 random rows (seed 3)" in html
    accuracy = finished.runs.get().metrics["accuracy"]
    assert f"{percent(accuracy)} (Random forest)" in html
    assert " s</td>" in html  # how long it took


def test_13_every_finished_job_can_be_deleted_from_its_results(finished, client, user):
    client.force_login(user)
    html = client.get(f"/jobs/{finished.pk}/results/").content.decode()
    assert f'action="/jobs/{finished.pk}/delete/"' in html and "data-confirm" in html
    response = client.post(f"/jobs/{finished.pk}/delete/", follow=True)  # succeeded, not only cancelled
    assert f"Deleted job {finished.pk}" in response.content.decode() and not Job.objects.filter(pk=finished.pk).exists()


def test_13_plot_downloads_of_two_jobs_have_different_names(finished, client, user):
    client.force_login(user)
    plot = Plot.objects.filter(job=finished, kind="confusion_matrix").get()
    response = client.get(f"/plots/{plot.pk}.png?download=1")
    assert f'filename="job{finished.pk}_random_forest_confusion_matrix.png"' in response["Content-Disposition"]


def test_13_another_users_plot_is_the_sites_404_page_in_a_browser_and_json_for_scripts(finished, client, other_user,
                                                                                         other_api):
    plot = Plot.objects.filter(job=finished).first()
    client.force_login(other_user)
    page = client.get(f"/plots/{plot.pk}.png", HTTP_ACCEPT="text/html,application/xhtml+xml,*/*;q=0.8")
    assert page.status_code == 404 and "Not found · Explainer" in page.content.decode()
    script = other_api.get(f"/plots/{plot.pk}.png")
    assert script.status_code == 404 and script.json()["error"]


def test_13_make_run_shows_the_sites_error_pages_not_djangos_debug_pages():
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_DEBUG", "DJANGO_SETTINGS_MODULE")}
    out = subprocess.run([sys.executable, "-c", "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = "
                          "'explainer_site.settings.local'; django.setup(); from django.conf import settings; "
                          "print(settings.DEBUG, settings.WHITENOISE_USE_FINDERS)"],
                         env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]


def test_13_a_rule_that_applies_to_few_rows_says_under_one_percent(finished, client, user):
    anchor = Explanation.objects.filter(job=finished, explainer="anchor").first()
    anchor.data = {**anchor.data, "coverage": 0.003}
    anchor.save(update_fields=["data"])
    client.force_login(user)
    html = client.get(f"/jobs/{finished.pk}/rows/{anchor.row}/").content.decode()
    assert "applies to &lt;1% of rows" in html and "applies to 0%" not in html
    assert [percent(v) for v in (0, 0.003, 0.26, 0.996, 1, None)] == ["0%", "<1%", "26%", ">99%", "100%", "—"]



def test_13_a_rule_reads_as_its_plot_draws_it(finished, client, user):
    """The rule sentence wrote ``proline <= 672`` under a plot that wrote ``proline ≤ 672`` (seen on the wine file)."""
    anchor = Explanation.objects.filter(job=finished, explainer="anchor").first()
    anchor.data = {**anchor.data, "rule": ["proline <= 672", "hue >= 1.2", "colour = red <= dark"]}
    anchor.save(update_fields=["data"])
    client.force_login(user)
    html = client.get(f"/jobs/{finished.pk}/rows/{anchor.row}/").content.decode()
    assert "IF proline ≤ 672 AND hue ≥ 1.2 AND colour = red ≤ dark THEN" in html and "&lt;=" not in html
    anchor.data = {**anchor.data, "rule": []}
    anchor.save(update_fields=["data"])
    assert "IF (no condition) THEN" in client.get(f"/jobs/{finished.pk}/rows/{anchor.row}/").content.decode()

def trust_table(html: str) -> str:
    start = html.index('<table class="trust-summary"')
    return html[start:html.index("</table>", start)]


def test_10_explainers_without_any_score_are_not_ranked(finished, client, user, api):
    Explanation.objects.filter(job=finished).update(trust={})
    body = api.get(f"/api/jobs/{finished.pk}/summary/").json()
    assert [e["rank"] for e in body["table"]] == [None, None] and body["measured"] == []
    client.force_login(user)
    table = trust_table(client.get(f"/jobs/{finished.pk}/results/").content.decode())
    assert "not ranked" in table and ">best<" not in table and "Deletion AUC" not in table


def test_10_the_trust_table_shows_only_the_scores_measured(finished, client, user):
    client.force_login(user)
    table = trust_table(client.get(f"/jobs/{finished.pk}/results/").content.decode())
    assert "Deletion AUC ↓" in table and "Additivity error" not in table  # no SHAP in this job
    assert ">best<" in table


def test_4_cancel_asks_first_and_a_cancelled_job_says_so_once(zoo, user, client):
    job = Job.objects.create(owner=user, dataset=zoo, classifiers=["decision_tree"], explainers=["lime"],
                             rows_spec={"ids": [0]}, params={"seed": 0, "test_size": 0.25}, schema=zoo.schema,
                             status="running", stage="Explaining rows 1–1 of 1")
    client.force_login(user)
    html = client.get(f"/jobs/{job.pk}/").content.decode()
    assert 'id="cancel-form" data-confirm="Cancel this job?' in html and "This page updates by itself" in html
    job_cancel(job=job)
    html = client.get(f"/jobs/{job.pk}/").content.decode()
    assert html.count(">Cancelled<") == 1 and '<span id="stage"></span>' in html
    assert '<span id="updates-note" hidden>' in html


def test_12_the_row_page_shows_the_rows_own_values(finished, client, user):
    import pandas as pd

    from datasets.selectors import dataset_frame_load

    row = Explanation.objects.filter(job=finished).values_list("row", flat=True).first()
    frame = dataset_frame_load(dataset=finished.dataset)
    client.force_login(user)
    html = client.get(f"/jobs/{finished.pk}/rows/{row}/").content.decode()
    assert 'id="row-values"' in html and "(the answer)" in html
    for column in ("legs", "feathers", "class_type"):
        value = frame.loc[row, column]
        assert f"<dt>{column}" in html and f"<dd>{int(value) if pd.notna(value) else '— missing'}</dd>" in html


def test_12_a_text_rows_page_shows_the_whole_message(user, client, run_on_commit):
    import pandas as pd
    from django.core.files.uploadedfile import SimpleUploadedFile

    from datasets.services import dataset_create, dataset_schema_set
    from tests.unit_fixtures import SHARED

    frame = pd.read_csv(SHARED / "sms_spam.csv").sample(120, random_state=1).reset_index(drop=True)
    frame.loc[0, "text"] = "A long message, " + "with many words " * 30 + "and the end of it."
    dataset = dataset_create(owner=user, file=SimpleUploadedFile("sms.csv", frame.to_csv(index=False).encode(),
                                                                 content_type="text/csv"), name="SMS")
    dataset = dataset_schema_set(dataset=dataset, label="label", features=["text"], text=["text"])
    with run_on_commit():
        job = job_create(owner=user, dataset=dataset, classifiers=["logistic_regression"], explainers=["lime"],
                         rows={"ids": [0]}, params={"lime": {"num_samples": 200}})
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    client.force_login(user)
    html = client.get(f"/jobs/{job.pk}/rows/0/").content.decode()
    assert '<blockquote class="row-text">A long message, with many words' in html and "and the end of it.</blockquote>" in html


def test_14_the_explained_rows_table_sorts_filters_and_pages(zoo, user, client):
    job = Job.objects.create(owner=user, dataset=zoo, classifiers=["random_forest"], explainers=["lime"],
                             rows_spec={"all_test": True}, params={"seed": 0, "test_size": 0.25}, schema=zoo.schema,
                             status="succeeded")
    job.runs.create(classifier="random_forest", status="done", metrics={"accuracy": 0.9})
    Explanation.objects.bulk_create(
        Explanation(job=job, classifier="random_forest", explainer="lime", row=i, predicted="Bird" if i % 4 else "Fish",
                    true_label="Bird", probabilities={"Bird": 0.5 + i / 400, "Fish": 0.5 - i / 400}, data={})
        for i in range(120))
    client.force_login(user)
    html = client.get(f"/jobs/{job.pk}/results/").content.decode()
    assert "Rows 1–50 of 120." in html and "Page 1 of 3" in html and ">Row 49<" in html and ">Row 50<" not in html
    assert "LIME" in html and ">lime<" not in html
    html = client.get(f"/jobs/{job.pk}/results/?tab=random_forest&show=wrong&sort=-confidence").content.decode()
    assert "Rows 1–30 of 30 (only mistakes, of 120 explained)." in html and "Page 1 of" not in html
    wrong = re.findall(r">Row (\d+)<", html)
    assert wrong[0] == "116" and len(wrong) == 30 and all(int(r) % 4 == 0 for r in wrong)  # most confident mistake first
    last = client.get(f"/jobs/{job.pk}/results/?page=3&sort=row").content.decode()
    assert "Rows 101–120 of 120." in last and 'rel="prev"' in last and 'rel="next"' not in last
    assert "Page 3 of 3" in client.get(f"/jobs/{job.pk}/results/?page=999").content.decode()  # past the end: the last
    junk = client.get(f"/jobs/{job.pk}/results/?page=99999999999&sort=evil&show=%00")
    assert junk.status_code == 200 and "Page 1 of 3" in junk.content.decode()


def test_8_cells_are_never_shown_in_scientific_notation(client, user):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from datasets.ingest import value_text

    assert [value_text(v) for v in (1234567.5, 0.0000123, 129243.0, 0.1 + 0.2, 1e20)] == [
        "1234568", "0.0000123", "129243", "0.3", "100000000000000000000"]
    rows = "\n".join(f"{1234567.5 + i},{0.0000123 * (i + 1)},{i % 2}" for i in range(30))
    client.force_login(user)
    response = client.post("/datasets/upload/", {"file": SimpleUploadedFile(
        "weights.csv", f"fnlwgt,dose,outcome\n{rows}\n".encode(), content_type="text/csv"), "name": "Weights"},
        follow=True)
    html = response.content.decode()
    assert response.status_code == 200 and "1234568" in html and "0.0000123" in html
    assert not re.search(r"\d\.?\d*e[+-]\d\d", html), re.search(r".{40}\d\.?\d*e[+-]\d\d.{20}", html)


def test_13_a_running_jobs_page_names_its_classifiers_and_explainers(zoo, user, client):
    job = Job.objects.create(owner=user, dataset=zoo, classifiers=["random_forest", "logistic_regression"],
                             explainers=["lime", "anchor"], rows_spec={"random": 4, "seed": 0},
                             params={"seed": 0, "test_size": 0.25}, schema=zoo.schema, status="running")
    client.force_login(user)
    html = client.get(f"/jobs/{job.pk}/").content.decode()
    settings = html[html.index('<dl class="settings">'):html.index("</dl>", html.index('<dl class="settings">'))]
    assert "Random forest, Logistic regression" in settings and "LIME, Anchors" in settings
    assert "random_forest" not in settings and "anchor," not in settings and "25% of the data" in settings
