"""Fuzz every endpoint's parameters with Hypothesis: whatever arrives, the answer is never a 5xx, and on ``/api/``
every 4xx is JSON with an ``error``. Values range from plausible (a known classifier, a row id) to hostile (NaN,
``1e400``, 400-digit ints, NUL, deep lists, "²", objects where numbers belong).

Unit-level through Django's test client; a job that the input happens to make valid is created and never run
(its tasks are queued on commit, and tests never commit).
"""

from __future__ import annotations

import json
import string
from urllib.parse import urlencode

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explanations.ml.classifiers import CLASSIFIERS
from explanations.ml.explainers import EXPLAINERS
from explanations.models import JobStatus
from tests.reliability import corpus
from tests.unit_fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db

FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
FEATURES = ["age", "city", "income"]
PARAM_NAMES = sorted({p.name for e in EXPLAINERS.values() for p in e.params}
                     | {p.name for c in CLASSIFIERS.values() for p in c.params} | {"stability_runs", "features"})

# Numbers as JSON text, raw: what json.dumps cannot write (1e400) next to what it can.
number_texts = st.one_of(
    st.sampled_from(["1e400", "-1e400", "NaN", "Infinity", "-Infinity", "1" + "0" * 400, "-0", "0.5", "1e-400",
                     "2147483648", "9223372036854775808", "1.0", "3"]),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)
hostile_text = st.one_of(
    st.sampled_from(["", " ", "²", "٣", "1²", "a\x00b", "\x00", "9" * 5000, "1e400", "nan", "inf", "-1", "0x10",
                     "1_000", " 7 ", "true", "null", "[1]", "{}", "<b>x</b>", "age", "city", "label", "name"]),
    st.text(max_size=30),
    st.text(alphabet=string.digits, min_size=1, max_size=25),
)


class Raw(str):
    """JSON text spliced in as is (``1e400`` or ``NaN`` as literals)."""


def json_text(value) -> str:
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {json_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(json_text(v) for v in value) + "]"
    return json.dumps(value)


scalars = st.one_of(st.none(), st.booleans(), number_texts.map(Raw), hostile_text)
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.sampled_from(PARAM_NAMES), st.text(max_size=8)), inner, max_size=4)),
    max_leaves=12)
deep = st.integers(min_value=30, max_value=3000).map(lambda n: Raw("[" * n + "]" * n))
anything = st.one_of(json_values, deep)


def keys_or_anything(keys) -> st.SearchStrategy:
    return st.one_of(st.lists(st.one_of(st.sampled_from(sorted(keys)), hostile_text), max_size=3), anything)


rows_specs = st.one_of(
    st.dictionaries(st.sampled_from(["ids", "names", "random", "misclassified", "all_test", "seed"]),
                    st.one_of(scalars, st.lists(scalars, max_size=4)), max_size=3),
    anything,
)
param_groups = st.one_of(st.dictionaries(st.sampled_from(PARAM_NAMES), scalars, max_size=3), anything)
params = st.dictionaries(
    st.sampled_from(["lime", "anchor", "shap", "test_size", "seed", "classifiers", "trust", "whatif", "turbo"]),
    st.one_of(param_groups, st.dictionaries(st.sampled_from(sorted(CLASSIFIERS)), param_groups, max_size=2)),
    max_size=4)


@pytest.fixture
def table(user):
    from datasets.services import dataset_create, dataset_schema_set

    dataset = dataset_create(owner=user, file=SimpleUploadedFile("table.csv", corpus.clean_csv()))
    return dataset_schema_set(dataset=dataset, label="label", features=FEATURES, row_name="name")


@pytest.fixture
def finished(api, table, run_on_commit):
    """A job that ran (1 row, a fast tree): its explanations, what-ifs and row page are there to read."""
    with run_on_commit():
        response = api.post("/api/jobs/", {"dataset": table.pk, "classifiers": ["decision_tree"], "explainers": ["lime"],
                                           "rows": {"ids": [1]}, "params": {"lime": {"num_samples": 200}}}, format="json")
    job = response.json()["id"]
    assert api.get(f"/api/jobs/{job}/").json()["status"] == JobStatus.SUCCEEDED
    return job


@pytest.fixture
def browser(client, user):
    client.force_login(user)
    return client


def assert_no_5xx(response, *, api: bool) -> None:
    assert response.status_code < 500, (response.status_code, response.content[:300])
    if api and response.status_code >= 400:
        assert response["Content-Type"].startswith("application/json"), (response.status_code, response.content[:300])
        assert not response.content or response.json()["error"], response.content[:300]  # HEAD has no body


@FUZZ
@given(data=st.data())
def test_job_create_never_5xx(api, table, data):
    body = {"dataset": data.draw(st.one_of(st.just(table.pk), anything)),
            "classifiers": data.draw(keys_or_anything(CLASSIFIERS)),
            "explainers": data.draw(keys_or_anything(EXPLAINERS))}
    for key, strategy in (("rows", rows_specs), ("params", params), ("request_key", anything)):
        if data.draw(st.booleans()):
            body[key] = data.draw(strategy)
    headers = {"HTTP_IDEMPOTENCY_KEY": data.draw(hostile_text)} if data.draw(st.booleans()) else {}
    response = api.generic("POST", "/api/jobs/", json_text(body), content_type="application/json", **headers)
    assert_no_5xx(response, api=True)


@FUZZ
@given(data=st.data())
def test_schema_put_never_5xx(api, table, data):
    columns = ["name", "label", *FEATURES]
    names = st.lists(st.one_of(st.sampled_from(columns), hostile_text), max_size=4)
    fields = {"label": st.one_of(st.sampled_from(columns), anything), "features": st.one_of(names, anything),
              "categorical": st.one_of(names, anything), "row_name": st.one_of(st.sampled_from(columns), anything),
              "class_names": st.one_of(st.dictionaries(st.sampled_from(["yes", "no", "x"]), scalars, max_size=2), anything),
              "text": st.one_of(names, anything),
              "image_shape": st.one_of(st.lists(number_texts.map(Raw), max_size=3), anything)}
    body = {key: data.draw(strategy) for key, strategy in fields.items() if key == "label" or data.draw(st.booleans())}
    response = api.generic("PUT", f"/api/datasets/{table.pk}/schema/", json_text(body), content_type="application/json")
    assert_no_5xx(response, api=True)


query_values = st.one_of(hostile_text, st.sampled_from(["0", "1", "2", "59", "60"]))


@FUZZ
@given(data=st.data())
def test_reads_never_5xx(api, finished, data):
    path = data.draw(st.sampled_from([f"/api/jobs/{finished}/explanations/", f"/api/jobs/{finished}/whatif/",
                                      f"/api/jobs/{finished}/summary/", f"/api/jobs/{finished}/", "/api/jobs/",
                                      "/api/datasets/", "/api/classifiers/", "/api/explainers/"]))
    query = data.draw(st.dictionaries(st.sampled_from(["row", "feature", "classifier", "format", "page"]),
                                      st.one_of(query_values, st.sampled_from([*FEATURES, "decision_tree"])), max_size=3))
    method = data.draw(st.sampled_from(["GET", "GET", "HEAD", "OPTIONS"]))
    response = getattr(api, method.lower())(f"{path}?{urlencode(query)}")
    assert_no_5xx(response, api=True)


@FUZZ
@given(job_id=st.one_of(st.integers(min_value=0, max_value=10**30), st.text(alphabet=string.digits, min_size=1, max_size=40)),
       suffix=st.sampled_from(["", "cancel/", "explanations/", "download/", "whatif/", "summary/", "rerun/"]),
       method=st.sampled_from(["get", "post", "delete", "put"]))
def test_api_ids_never_5xx(api, table, job_id, suffix, method):
    for path in (f"/api/jobs/{job_id}/{suffix}", f"/api/datasets/{job_id}/", f"/api/datasets/{job_id}/schema/"):
        assert_no_5xx(getattr(api, method)(path), api=True)


@FUZZ
@given(data=st.data())
def test_pages_never_5xx(browser, finished, table, data):
    row = data.draw(st.one_of(st.integers(min_value=0, max_value=70), st.integers(min_value=0, max_value=10**25)))
    path = data.draw(st.sampled_from([f"/jobs/{finished}/rows/{row}/", "/jobs/new/", f"/jobs/{finished}/results/",
                                      f"/jobs/{finished}/status/", f"/datasets/{table.pk}/schema/", f"/jobs/{finished}/"]))
    query = data.draw(st.dictionaries(st.sampled_from(["feature", "dataset", "row"]),
                                      st.one_of(query_values, st.sampled_from(FEATURES)), max_size=2))
    assert_no_5xx(browser.get(path, query), api=False)


job_form_fields = {
    "rows_mode": st.sampled_from(["random", "misclassified", "ids", "names", "all_test", "other"]),
    "rows_count": query_values, "rows_ids": st.one_of(query_values, st.just("1, 2; 3 ²")),
    "rows_names": st.one_of(hostile_text, st.just("person_1, person_2")), "seed": query_values,
    "test_size": st.one_of(query_values, st.sampled_from(["0.25", "0.05", "0.5"])),
    "trust__stability_runs": query_values, "request_key": hostile_text,
    "lime__num_samples": query_values, "lime__num_features": query_values, "lime__discretize_continuous": hostile_text,
    "anchor__threshold": st.one_of(query_values, st.sampled_from(["0.9", "nan", "-nan", "1e400"])),
    "shap__algorithm": hostile_text, "clf__decision_tree__min_samples_leaf": query_values,
    "clf__logistic_regression__C": st.one_of(query_values, st.sampled_from(["nan", "1e400", "1e-400"])),
}


@FUZZ
@given(data=st.data())
def test_page_forms_never_5xx(browser, table, data):
    if data.draw(st.booleans()):
        form = {key: data.draw(strategy) for key, strategy in job_form_fields.items() if data.draw(st.booleans())}
        form |= {"dataset": table.pk, "classifiers": data.draw(st.lists(st.sampled_from(["decision_tree", "logistic_regression", "x"]),
                                                                             max_size=2)),
                 "explainers": data.draw(st.lists(st.sampled_from(["lime", "anchor", "shap", "x"]), max_size=2)),
                 "whatif__features": data.draw(st.lists(st.one_of(st.sampled_from(FEATURES), hostile_text), max_size=2))}
        response = browser.post("/jobs/new/", form)
    else:
        columns = ["name", "label", *FEATURES]
        form = {"label": data.draw(st.one_of(st.sampled_from(columns), hostile_text)),
                "features": data.draw(st.lists(st.one_of(st.sampled_from(columns), hostile_text), max_size=3)),
                "categorical": data.draw(st.lists(st.sampled_from(columns), max_size=2)),
                "row_name": data.draw(st.one_of(st.sampled_from(["", "name"]), hostile_text)),
                "class_name__0": data.draw(hostile_text), "text": data.draw(st.one_of(st.just(""), hostile_text)),
                "image_shape": data.draw(st.one_of(st.sampled_from(["", "2 x 2", "28×28×3", f"{'9' * 5000} x 2", f"{'9' * 400} x 2"]), hostile_text))}
        response = browser.post(f"/datasets/{table.pk}/schema/", form)
    assert_no_5xx(response, api=False)


@pytest.fixture
def cleared_cache():
    """The login lockout counts in the cache: start clean, and leave nothing locked for the tests after."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@settings(FUZZ, max_examples=40)
@given(path=st.sampled_from(["/accounts/login/", "/accounts/signup/"]), username=hostile_text, password=hostile_text)
def test_account_forms_never_5xx(client, user, cleared_cache, path, username, password):
    form = {"username": username, "password": password, "password1": password, "password2": password}
    assert_no_5xx(client.post(path, form), api=False)


def test_an_unexpected_error_on_the_api_is_json_without_its_text(api, monkeypatch):
    """The last line of defence: whatever still escapes a view answers JSON, and the exception's text is only logged."""
    import explanations.api

    def broken(**kwargs):
        raise RuntimeError("internal detail /srv/secret")

    monkeypatch.setattr(explanations.api, "job_list", broken)
    api.raise_request_exception = False
    response = api.get("/api/jobs/")
    assert response.status_code == 500 and response["Content-Type"].startswith("application/json")
    assert "Something went wrong" in response.json()["error"] and b"secret" not in response.content
