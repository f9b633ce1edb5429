"""Issue 17: a self-contained HTML report of a job, and a read-only share link its owner can revoke."""

import re

import pytest
from django.test import Client

from explanations.models import Job, JobShare, Plot
from explanations.report import REPORT_POLICY
from explanations.services.job_create import job_create
from tests.unit_fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db


@pytest.fixture
def finished(zoo, user, run_on_commit) -> Job:
    with run_on_commit():
        job = job_create(owner=user, dataset=zoo, classifiers=["random_forest"], explainers=["lime", "anchor"],
                         rows={"ids": [0, 5]}, params={"lime": {"num_samples": 300}, "anchor": {"beam_size": 1}})
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    return job


def check_self_contained(html: str, job: Job) -> None:
    assert html.startswith("<!doctype html>") and f"job {job.pk}" in html
    # no URL out of the file: every image is embedded, no script, no stylesheet link
    assert not re.search(r'(src|href)="(?!data:)', html) and "<script" not in html and "<link" not in html
    assert "http://" not in html and "https://" not in html
    images = re.findall(r'<img src="data:image/png;base64,', html)
    assert len(images) == Plot.objects.filter(job=job).exclude(kind="whatif").count()
    assert "Random forest" in html and "LIME" in html and "Anchors" in html and "How far to trust" in html


def test_the_report_is_one_self_contained_html_file(finished, api, other_api):
    response = api.get(f"/api/jobs/{finished.pk}/report/")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    assert response["Content-Security-Policy"] == REPORT_POLICY
    check_self_contained(response.content.decode(), finished)
    saved = api.get(f"/api/jobs/{finished.pk}/report/?download=1")
    assert saved["Content-Disposition"] == f'attachment; filename="explainer-job-{finished.pk}-report.html"'
    assert other_api.get(f"/api/jobs/{finished.pk}/report/").status_code == 404


def test_a_share_link_works_logged_out_until_its_owner_stops_sharing(finished, api, other_api):
    made = api.post(f"/api/jobs/{finished.pk}/share/")
    assert made.status_code == 201 and made.json()["url"].startswith("http://testserver/shared/")
    assert api.post(f"/api/jobs/{finished.pk}/share/").json()["url"] == made.json()["url"]  # one link per job
    assert other_api.post(f"/api/jobs/{finished.pk}/share/").status_code == 404
    path = made.json()["url"].removeprefix("http://testserver")
    reader = Client()  # no account
    page = reader.get(path)
    assert page.status_code == 200 and page["Cache-Control"] == "private, no-store"
    assert page["Referrer-Policy"] == "no-referrer" and page["Content-Security-Policy"] == REPORT_POLICY
    check_self_contained(page.content.decode(), finished)
    # the link shows the report and nothing else: the app's own pages still want a login
    assert reader.get(f"/jobs/{finished.pk}/results/").status_code == 302
    assert api.delete(f"/api/jobs/{finished.pk}/share/").status_code == 204
    assert reader.get(path).status_code == 404 and not JobShare.objects.exists()
    again = api.post(f"/api/jobs/{finished.pk}/share/").json()["url"]
    assert again != made.json()["url"]  # sharing again makes a new secret; the old one stays dead
    assert reader.get(path).status_code == 404
    assert reader.get("/shared/short/").status_code == 404 and reader.get("/shared/" + "x" * 40 + "/").status_code == 404


def test_the_results_page_shares_and_stops_sharing(finished, client, user):
    client.force_login(user)
    html = client.get(f"/jobs/{finished.pk}/results/").content.decode()
    assert "Make a share link" in html and f'href="/jobs/{finished.pk}/report.html?download=1"' in html
    html = client.post(f"/jobs/{finished.pk}/share/", follow=True).content.decode()
    token = JobShare.objects.get(job=finished).token
    assert f'value="http://testserver/shared/{token}/"' in html and "Stop sharing" in html
    client.post(f"/jobs/{finished.pk}/unshare/")
    assert not JobShare.objects.exists()
    download = client.get(f"/jobs/{finished.pk}/report.html?download=1")
    assert download.status_code == 200 and "attachment" in download["Content-Disposition"]
