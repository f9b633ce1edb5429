"""Nobody sees another's data: every URL with an id is tried with another user's ids (pages and API), CSRF is
enforced on every form, sign-in is rate limited, files live under generated names and are never served as
media, and nothing from an upload is ever unpickled."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import Resolver404, URLPattern, URLResolver, get_resolver, resolve

from datasets.models import Dataset
from explanations.models import Job, Plot
from tests.reliability import corpus
from tests.unit_fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def finished(user, run_on_commit):
    """Alice's dataset with a finished job, its explanation and plots."""
    from datasets.services import dataset_create, dataset_schema_set
    from explanations.services.job_create import job_create

    dataset = dataset_create(owner=user, file=SimpleUploadedFile("secret.csv", corpus.clean_csv()), name="Alice secret")
    dataset_schema_set(dataset=dataset, label="label", features=["age", "income"], row_name="name")
    with run_on_commit():
        job = job_create(owner=user, dataset=dataset, classifiers=["decision_tree"], explainers=["lime"],
                         rows={"ids": [3]}, params={"lime": {"num_samples": 200}})
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    from explanations.exports import job_zip_fresh

    job_zip_fresh(job=job)  # packed as its first download would
    return dataset, job, job.plots.filter(explanation__isnull=False).first()


def routes(resolver: URLResolver | None = None, prefix: str = "") -> list[str]:
    """Every URL route of the project as a string (``jobs/<int:job_id>/``), admin left out (staff only)."""
    out = []
    for entry in (resolver or get_resolver()).url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            if not route.startswith("admin/"):
                out += routes(entry, route)
        elif isinstance(entry, URLPattern):
            out.append(route)
    return out


# (method, route as declared, the path to try with Alice's ids). Each route with an id must be here.
def owned_requests(dataset: Dataset, job: Job, plot: Plot) -> list[tuple[str, str, str]]:
    from uploaded_models.models import UploadedModel

    d, j, p = dataset.pk, job.pk, plot.pk
    m = UploadedModel.objects.get_or_create(owner=dataset.owner, dataset=dataset, name="Alice secret model",
                                            format="onnx", file="models/alice.onnx")[0].pk
    return [
        ("POST", "datasets/<int:dataset_id>/models/", f"/datasets/{d}/models/"),
        ("POST", "models/<int:model_id>/delete/", f"/models/{m}/delete/"),
        ("GET", "api/datasets/<int:dataset_id>/models/", f"/api/datasets/{d}/models/"),
        ("POST", "api/datasets/<int:dataset_id>/models/", f"/api/datasets/{d}/models/"),
        ("GET", "api/models/<int:model_id>/", f"/api/models/{m}/"),
        ("DELETE", "api/models/<int:model_id>/", f"/api/models/{m}/"),
        ("GET", "datasets/<int:dataset_id>/", f"/datasets/{d}/"),
        ("GET", "datasets/<int:dataset_id>/schema/", f"/datasets/{d}/schema/"),
        ("POST", "datasets/<int:dataset_id>/schema/", f"/datasets/{d}/schema/"),
        ("POST", "datasets/<int:dataset_id>/delete/", f"/datasets/{d}/delete/"),
        ("GET", "jobs/<int:job_id>/", f"/jobs/{j}/"),
        ("GET", "jobs/<int:job_id>/status/", f"/jobs/{j}/status/"),
        ("POST", "jobs/<int:job_id>/cancel/", f"/jobs/{j}/cancel/"),
        ("POST", "jobs/<int:job_id>/delete/", f"/jobs/{j}/delete/"),
        ("GET", "jobs/<int:job_id>/results/", f"/jobs/{j}/results/"),
        ("GET", "jobs/<int:job_id>/rows/<int:row>/", f"/jobs/{j}/rows/3/"),
        ("GET", "jobs/<int:job_id>/download.zip", f"/jobs/{j}/download.zip"),
        ("POST", "jobs/<int:job_id>/rerun/", f"/jobs/{j}/rerun/"),
        ("GET", "plots/<int:plot_id>.<str:extension>", f"/plots/{p}.png"),
        ("GET", "plots/<int:plot_id>.<str:extension>", f"/plots/{p}.svg?download=1"),
        ("GET", "jobs/new/", f"/jobs/new/?dataset={d}"),
        ("POST", "jobs/new/", "/jobs/new/"),
        ("GET", "api/datasets/<int:dataset_id>/", f"/api/datasets/{d}/"),
        ("DELETE", "api/datasets/<int:dataset_id>/", f"/api/datasets/{d}/"),
        ("PUT", "api/datasets/<int:dataset_id>/schema/", f"/api/datasets/{d}/schema/"),
        ("GET", "api/jobs/<int:job_id>/", f"/api/jobs/{j}/"),
        ("DELETE", "api/jobs/<int:job_id>/", f"/api/jobs/{j}/"),
        ("POST", "api/jobs/<int:job_id>/cancel/", f"/api/jobs/{j}/cancel/"),
        ("GET", "api/jobs/<int:job_id>/explanations/", f"/api/jobs/{j}/explanations/"),
        ("GET", "api/jobs/<int:job_id>/download/", f"/api/jobs/{j}/download/"),
        ("GET", "api/jobs/<int:job_id>/summary/", f"/api/jobs/{j}/summary/"),
        ("GET", "api/jobs/<int:job_id>/whatif/", f"/api/jobs/{j}/whatif/?row=3"),
        ("POST", "api/jobs/<int:job_id>/rerun/", f"/api/jobs/{j}/rerun/"),
        ("GET", "api/jobs/<int:job_id>/report/", f"/api/jobs/{j}/report/"),
        ("POST", "api/jobs/<int:job_id>/share/", f"/api/jobs/{j}/share/"),
        ("DELETE", "api/jobs/<int:job_id>/share/", f"/api/jobs/{j}/share/"),
        ("GET", "jobs/<int:job_id>/report.html", f"/jobs/{j}/report.html"),
        ("POST", "jobs/<int:job_id>/share/", f"/jobs/{j}/share/"),
        ("POST", "jobs/<int:job_id>/unshare/", f"/jobs/{j}/unshare/"),
        ("POST", "api/jobs/", "/api/jobs/"),
        ("GET", "api/jobs/compare/", f"/api/jobs/compare/?a={j}&b={j}"),
        ("GET", "jobs/compare/", f"/jobs/compare/?a={j}&b={j}"),
        ("POST", "jobs/<int:job_id>/rows/<int:row>/", f"/jobs/{j}/rows/3/"),  # the what-if editor's form
        ("GET", "api/jobs/<int:job_id>/scenarios/", f"/api/jobs/{j}/scenarios/"),
        ("POST", "api/jobs/<int:job_id>/scenarios/", f"/api/jobs/{j}/scenarios/"),
        ("GET", "api/jobs/<int:job_id>/scenarios/<int:scenario_id>/", f"/api/jobs/{j}/scenarios/1/"),
        ("GET", "api/jobs/<int:job_id>/network/", f"/api/jobs/{j}/network/"),
        ("POST", "api/jobs/<int:job_id>/network/visualise/", f"/api/jobs/{j}/network/visualise/"),
        ("POST", "api/jobs/<int:job_id>/network/groups/", f"/api/jobs/{j}/network/groups/"),
        ("GET", "api/jobs/<int:job_id>/network/views/<int:view_id>/", f"/api/jobs/{j}/network/views/1/"),
        ("POST", "api/jobs/<int:job_id>/adversarial/", f"/api/jobs/{j}/adversarial/"),
        ("GET", "jobs/<int:job_id>/network/", f"/jobs/{j}/network/"),
        ("POST", "jobs/<int:job_id>/network/", f"/jobs/{j}/network/"),
    ]


def send(client, method: str, path: str, dataset_id: int):
    body = {"dataset": dataset_id, "label": "label", "classifiers": ["knn"], "explainers": ["lime"],
            "rows_mode": "random", "features": ["age"]}
    if path.startswith("/api/"):
        return getattr(client, method.lower())(path, body if method in ("POST", "PUT") else None, format="json")
    return getattr(client, method.lower())(path, body if method == "POST" else None)


def test_every_url_with_an_id_is_in_the_ownership_table(finished):
    declared = {route for route in routes() if "<int:" in route}  # (the demo's <slug:key> names no one's data)
    tried = {route for _, route, _ in owned_requests(*finished) if "<int:" in route}
    assert declared == tried, f"routes with ids not tried with another user's ids: {declared - tried}"


def test_another_users_ids_are_404_on_every_page_and_api(finished, other_user, other_api, client):
    dataset, job, plot = finished
    client.force_login(other_user)
    for method, _, path in owned_requests(dataset, job, plot):
        via = other_api if path.startswith("/api/") else client
        response = send(via, method, path, dataset.pk)
        assert response.status_code == 404, (method, path, response.status_code)
        if path.startswith("/api/"):
            assert response.json()["error"] == "Not found."
        else:
            assert b"Alice secret" not in response.content
    # Nothing of Alice's changed, nothing was made for Mallory.
    job.refresh_from_db()
    assert job.status == "succeeded" and Dataset.objects.filter(pk=dataset.pk).exists() and dataset.schema
    assert Job.objects.filter(owner=other_user).count() == 0 and Plot.objects.filter(pk=plot.pk).exists()
    # Lists show only one's own.
    assert other_api.get("/api/datasets/").json() == [] and other_api.get("/api/jobs/").json() == []
    for page in ("/datasets/", "/jobs/", "/jobs/new/"):
        response = client.get(page)
        assert response.status_code == 200 and b"Alice secret" not in response.content, page


def test_anonymous_requests_never_reach_data(finished, client):
    dataset, job, plot = finished
    for method, _, path in owned_requests(dataset, job, plot):
        response = send(client, method, path, dataset.pk)
        if path.startswith("/api/") or path.startswith("/plots/"):
            assert response.status_code in (401, 403), (method, path, response.status_code)
        else:
            assert response.status_code == 302 and "/accounts/login/" in response["Location"], (method, path)
    assert Job.objects.count() == 1 and Dataset.objects.count() == 1


def test_files_are_not_served_as_media(finished, user, client, settings):
    dataset, job, plot = finished
    client.force_login(user)
    for name in (dataset.data_file.name, plot.png.name, job.result_zip.name):
        assert Path(settings.MEDIA_ROOT, name).is_file()
        for url in (settings.MEDIA_URL + name, "/media/" + name, "/" + name):
            with pytest.raises(Resolver404):
                resolve(url)
            assert client.get(url).status_code == 404, url
    # Stored under generated names: a uuid for the table, job-scoped names for what the worker wrote.
    assert re.fullmatch(rf"datasets/{user.pk}/[0-9a-f]{{32}}\.parquet", dataset.data_file.name)
    assert plot.png.name.startswith(f"jobs/{job.pk}/plots/")


def test_nothing_is_ever_unpickled_except_the_models_the_worker_wrote():
    """Only ``model_file_load`` unpickles, and every call of it reads a ``ModelRun.model_file`` (written by our worker
    under a generated name); no module that handles requests or uploads touches those files."""
    loaders = re.compile(r"\b(joblib\.load|pickle\.loads?|torch\.load|read_pickle|dill\.loads?|allow_pickle\s*=\s*True)\b")
    the_loader = Path("explanations", "ml", "model_files.py")
    unpickling, calls = [], 0
    for path in REPO.rglob("*.py"):
        relative = path.relative_to(REPO)
        parts = set(relative.parts)
        if {".venv", "tests", "var", "node_modules", "migrations"} & parts:
            continue
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines):
            if loaders.search(line):
                unpickling.append(f"{relative}:{line.strip()}")
            if "model_file_load(" in line and not line.lstrip().startswith("def "):
                calls += 1
                context = "\n".join(lines[max(number - 2, 0):number + 1])
                assert "run.model_file.open(" in context, f"{relative}:{number + 1}: {line.strip()}"
        if path.name in ("views.py", "api.py", "forms.py", "uploads.py") or "datasets" in parts:
            assert "model_file" not in path.read_text(), relative
    assert unpickling == [f"{the_loader}:return joblib.load(handle)"]
    assert calls >= 2  # a step reading its run's model (one runner for every kind of data) and the insights


# ---------------------------------------------------------------- CSRF


FORMS = [
    ("/accounts/login/", {"username": "alice", "password": "a-long-password-1"}),
    ("/accounts/signup/", {"username": "eve", "password1": "a-very-long-pass-9", "password2": "a-very-long-pass-9"}),
    ("/accounts/logout/", {}),
    ("/datasets/upload/", {"file": SimpleUploadedFile("t.csv", corpus.clean_csv())}),
    ("/datasets/demo/iris/", {}),
    ("/datasets/{d}/schema/", {"label": "label", "features": ["age"]}),
    ("/datasets/{d}/delete/", {}),
    ("/jobs/new/", {"dataset": "{d}", "classifiers": ["knn"], "explainers": ["lime"]}),
    ("/jobs/{j}/cancel/", {}),
    ("/jobs/{j}/delete/", {}),
]


def test_every_page_form_refuses_a_post_without_the_csrf_token(finished, user):
    dataset, job, _ = finished
    client = Client(enforce_csrf_checks=True)
    for path, data in FORMS:
        client.force_login(user)
        path = path.format(d=dataset.pk, j=job.pk)
        data = {k: (v.format(d=dataset.pk) if isinstance(v, str) else v) for k, v in data.items()}
        response = client.post(path, data)
        assert response.status_code == 403, (path, response.status_code)
    assert Dataset.objects.count() == 1 and Job.objects.count() == 1 and not dataset.jobs.exclude(pk=job.pk).exists()

    # The same client with the token goes through: the 403s above were the CSRF check, nothing else.
    token = client.get(f"/datasets/{dataset.pk}/schema/").cookies["csrftoken"].value
    response = client.post(f"/datasets/{dataset.pk}/schema/", {"label": "label", "features": ["age"],
                                                               "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    # The API with a session cookie needs the token too (with an API token it needs none).
    response = client.post("/api/jobs/", {"dataset": dataset.pk, "classifiers": ["knn"], "explainers": ["lime"]},
                           content_type="application/json")
    assert response.status_code == 403 and "CSRF" in response.json()["error"]


def test_every_post_form_in_the_templates_carries_the_token():
    forms = 0
    for template in (REPO / "templates").rglob("*.html"):
        for form in re.findall(r"<form\b[^>]*>.*?</form>", template.read_text(), flags=re.S | re.I):
            if re.search(r'method="post"', form, flags=re.I):
                forms += 1
                assert "{% csrf_token %}" in form, (template.name, form[:200])
    assert forms >= 8


# ---------------------------------------------------------------- sign-in rate limit


@pytest.fixture
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


def login(client: Client, password: str, ip: str = "10.0.0.1", username: str = "alice"):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_sign_in_is_locked_after_five_failures_and_says_for_how_long(client, user, fresh_cache, settings):
    settings.EXPLAINER_LOGIN_MAX_FAILURES = 5
    for _ in range(4):
        response = login(client, "wrong-password")
        assert response.status_code == 200 and b"Please enter a correct username and password" in response.content
    response = login(client, "wrong-password")  # the fifth failure locks, and already says so
    assert response.status_code == 429
    assert b"Too many failed sign-in attempts. Wait 15 minutes and try again." in response.content
    response = login(client, "a-long-password-1")  # right password, but locked: not even checked
    assert response.status_code == 429
    assert b"Too many failed sign-in attempts. Wait 15 minutes and try again." in response.content
    assert "_auth_user_id" not in client.session
    assert login(Client(), "a-long-password-1", ip="10.0.0.2").status_code == 302  # another address is not locked
    response = login(Client(), "a-long-password-1", username="ALICE ")  # nor is a spelling of the name a way round
    assert response.status_code == 429


def test_a_success_forgets_the_accounts_failures(client, user, fresh_cache):
    for _ in range(4):
        assert login(client, "wrong-password").status_code == 200
    assert login(client, "a-long-password-1").status_code == 302
    client.logout()
    for _ in range(4):
        assert login(client, "wrong-password").status_code == 200
    assert login(client, "a-long-password-1").status_code == 302


def test_one_address_spraying_many_usernames_locks_only_those_usernames(client, user, fresh_cache, settings):
    """Counting per address would let one client lock everyone behind it (or behind the proxy) out: the lock is
    per username + address (tests/accounts/test_logins.py checks the rest)."""
    settings.EXPLAINER_LOGIN_MAX_FAILURES = 2
    for i in range(8):  # 4 x the per-account limit, each name failing once
        assert login(client, "guess", username=f"user{i}").status_code == 200
    assert login(client, "a-long-password-1").status_code == 302
