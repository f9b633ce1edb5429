"""Headers and what pages may run (issue 15, item 8): a CSP without inline script on every response, SVG plots
sandboxed, API docs served from this server only, and job errors that never show an exception's internals."""

import logging
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.files.uploadedfile import SimpleUploadedFile

from datasets.services import dataset_create, dataset_schema_set
from explanations import job_steps, tasks
from explanations.models import Job, Plot
from explanations.services.job_create import job_create
from tests.unit_fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db

TEMPLATES = Path(settings.BASE_DIR) / "templates"


def policy(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy", "")
    assert header, f"no Content-Security-Policy on {response.request['PATH_INFO']}"
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


def assert_strict(directives: dict[str, list[str]]) -> None:
    scripts = directives.get("script-src", directives.get("default-src"))
    assert scripts == ["'self'"], directives
    assert "'unsafe-inline'" not in directives.get("style-src", []) and "'unsafe-eval'" not in scripts
    assert directives["object-src"] == ["'none'"] and directives["frame-ancestors"] == ["'none'"]
    assert directives["base-uri"] == ["'self'"] and directives["form-action"] == ["'self'"]


@pytest.fixture
def dollar_job(user, run_on_commit):
    """A real job on a table whose column and class names are full of `$` (mathtext would fail every plot)."""
    rows = ["price_$^$,size,label"] + [f"{i % 7},{'big' if i % 3 else 'small'},{'a' if i % 7 > 3 else 'b'}"
                                       for i in range(60)]
    file = SimpleUploadedFile("dollars.csv", "\n".join(rows).encode(), content_type="text/csv")
    dataset = dataset_create(owner=user, file=file, name="Dollars")
    dataset = dataset_schema_set(dataset=dataset, label="label", features=["price_$^$", "size"], categorical=["size"],
                                 class_names={"a": "$\\x$", "b": "cheap $5"})
    with run_on_commit():
        job = job_create(owner=user, dataset=dataset, classifiers=["decision_tree"], explainers=["lime", "anchor", "shap"],
                         rows={"ids": [0, 1]}, params={"lime": {"num_samples": 200}, "anchor": {"threshold": 0.9},
                                                       "shap": {"background_size": 10}})
    job.refresh_from_db()
    return job


def test_a_job_with_dollars_in_its_names_draws_them_as_typed(dollar_job):
    assert dollar_job.status == "succeeded", dollar_job.error
    plots = Plot.objects.filter(job=dollar_job)
    kinds = set(plots.values_list("kind", flat=True))
    assert {"lime", "anchor", "shap", "confusion_matrix"} <= kinds
    for plot in plots:
        with plot.svg.open("rb") as handle:
            svg = handle.read().decode()
        assert any(name in svg for name in ("price_$^$", "$\\x$", "cheap $5")), plot.kind
        with plot.png.open("rb") as handle:
            assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    confusion = plots.get(kind="confusion_matrix")
    with confusion.svg.open("rb") as handle:
        assert "$\\x$" in handle.read().decode()


def test_pages_api_and_static_files_carry_a_csp_without_inline_script(client, user, api):
    assert_strict(policy(client.get("/accounts/login/")))
    client.force_login(user)
    assert_strict(policy(client.get("/datasets/")))
    assert_strict(policy(client.get("/jobs/new/")))
    assert_strict(policy(api.get("/api/datasets/")))
    assert_strict(policy(api.get("/api/jobs/999999/")))  # errors too
    assert_strict(policy(client.get("/no-such-page/")))


def test_svg_plots_are_sandboxed_and_pages_still_embed_them(client, user, dollar_job):
    plot = Plot.objects.filter(job=dollar_job, kind="lime").first()
    client.force_login(user)
    svg = client.get(f"/plots/{plot.pk}.svg")
    assert svg.status_code == 200 and svg["Content-Type"] == "image/svg+xml"
    directives = policy(svg)
    assert directives["default-src"] == ["'none'"] and "sandbox" in directives and "script-src" not in directives
    assert svg["X-Content-Type-Options"] == "nosniff"
    download = client.get(f"/plots/{plot.pk}.svg?download=1")
    assert download["Content-Disposition"].startswith("attachment") and "sandbox" in policy(download)
    png = client.get(f"/plots/{plot.pk}.png")
    assert png.status_code == 200 and png["X-Content-Type-Options"] == "nosniff"
    assert_strict(policy(png))
    row = client.get(f"/jobs/{dollar_job.pk}/rows/0/")
    assert row.status_code == 200
    assert f'src="/plots/{plot.pk}.png"'.encode() in row.content  # same origin: img-src 'self' allows it
    assert b'data-width="' in row.content and b'style="' not in row.content


class ScriptsAndHandlers(HTMLParser):
    """Collects inline <script> code, on*= handlers, style attributes and javascript: URLs of one template."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._inline = False

    def handle_starttag(self, tag, attrs):
        names = dict(attrs)
        for name, value in attrs:
            if name.startswith("on") or name == "style":
                self.found.append(f"<{tag} {name}=…>")
            if name in ("href", "src", "action", "formaction") and (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}=javascript:…>")
        self._inline = tag == "script" and "src" not in names and names.get("type") != "application/json"

    def handle_endtag(self, tag):
        if tag == "script":
            self._inline = False

    def handle_data(self, data):
        if self._inline and data.strip():
            self.found.append(f"<script>{data.strip()[:40]}…")


def test_no_template_has_inline_script_handlers_or_styles():
    offenders = {}
    for path in sorted(TEMPLATES.rglob("*.html")):
        parser = ScriptsAndHandlers()
        parser.feed(path.read_text())
        if parser.found:
            offenders[str(path.relative_to(TEMPLATES))] = parser.found
    assert not offenders
    assert re.search(r"<script[^>]*>\s*\S", (TEMPLATES / "datasets" / "detail.html").read_text()) is None


def test_the_scanner_sees_what_it_should():
    parser = ScriptsAndHandlers()
    parser.feed('<form onsubmit="x()"><div style="a"></div><script>go()</script><script src="/s.js"></script>'
                '<script type="application/json">{"a": 1}</script><a href="javascript:x()">x</a></form>')
    assert len(parser.found) == 4


class Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []
        self._script = False

    def handle_starttag(self, tag, attrs):
        names = dict(attrs)
        if tag == "script":
            self._script = "src" not in names
            if "src" in names:
                self.urls.append(names["src"])
        if tag == "link":
            self.urls.append(names.get("href", ""))
        if tag == "style":
            self.inline.append("<style>")
        if "style" in names:
            self.inline.append(f"<{tag} style=…>")

    def handle_endtag(self, tag):
        self._script = False if tag == "script" else self._script

    def handle_data(self, data):
        if self._script and data.strip():
            self.inline.append(data.strip()[:40])


def test_api_docs_load_only_this_servers_files(client, user):
    client.force_login(user)
    page = client.get("/api/docs/")
    assert page.status_code == 200
    assert_strict(policy(page))
    assets = Assets()
    assets.feed(page.content.decode())
    assert not assets.inline, assets.inline
    scripts = [url for url in assets.urls if url.endswith(".js") or "?script" in url]
    assert len(scripts) >= 3 and any("swagger-ui-bundle" in url for url in scripts)
    for url in assets.urls:
        assert url.startswith("/") and not url.startswith("//"), url
        if url.startswith(settings.STATIC_URL):
            assert finders.find(url[len(settings.STATIC_URL):].split("?")[0]), f"{url} is not a static file"
        else:
            response = client.get(url)
            assert response.status_code == 200, url
            assert b"SwaggerUIBundle" in b"".join(response) and "javascript" in response["Content-Type"]
    assert b"cdn.jsdelivr" not in page.content and b"unpkg" not in page.content


def test_an_unexpected_error_in_a_job_is_logged_not_shown(user, zoo, run_on_commit, monkeypatch, caplog):
    def broken(**kwargs):
        raise KeyError("secret_internal_column")

    monkeypatch.setitem(job_steps.STEP_WORK, "train", broken)
    with caplog.at_level(logging.ERROR, logger="explanations.tasks"), run_on_commit():
        job = job_create(owner=user, dataset=zoo, classifiers=["decision_tree"], explainers=["lime"], rows={"ids": [0]},
                         params={"lime": {"num_samples": 100}})
    job = Job.objects.get(pk=job.pk)
    assert job.status == "failed"
    assert "secret_internal_column" not in job.error and "KeyError" not in job.error
    assert f"job number {job.pk}" in job.error
    logged = [record for record in caplog.records if record.exc_info]
    assert any(f"job {job.pk}" in record.getMessage() and "secret_internal_column" in str(record.exc_info[1])
               for record in logged)


def test_messages_meant_for_users_stay_and_wrapped_internals_are_logged(caplog):
    from explainer_site.exceptions import ApplicationError
    from explanations.ml.explainers.base import PredictorCallError

    assert tasks.failure_reason(ApplicationError("Pick a label first."), job_id=3) == "Pick a label first."
    try:
        try:
            raise ValueError("/srv/app/model.joblib is corrupt")
        except ValueError as inner:
            raise PredictorCallError("The model failed while being explained; try another classifier.") from inner
    except PredictorCallError as exc:
        with caplog.at_level(logging.ERROR, logger="explanations.tasks"):
            reason = tasks.failure_reason(exc, job_id=4)
    assert "/srv/app" not in reason and "model failed" in reason
    assert any("job 4" in r.getMessage() and r.exc_info for r in caplog.records)
    reason = tasks.failure_reason(PermissionError(13, "Permission denied", "/srv/app/var/media/jobs/4"), job_id=4)
    assert "/srv/app" not in reason and "job number 4" in reason
