"""The what-if editor (explanations/scenarios.py): a row of a Heart job with values changed, predicted by every
classifier and explained again on a worker; its API contract, its checks, its page and its place in the ZIP."""

import io
import json
import zipfile
from unittest.mock import patch

import pytest

from explanations.models import Explanation, Job, Scenario
from explanations.selectors import job_global_plots
from tests.unit_fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db

FAST = {"lime": {"num_samples": 300}, "shap": {"background_size": 20, "nsamples": 100}, "trust": {"stability_runs": 0}}


def heart_job(api, heart, run_on_commit) -> Job:
    """Random forest and logistic regression on Heart rows 0 and 5, LIME, SHAP and Anchors."""
    with run_on_commit():
        response = api.post("/api/jobs/", {"dataset": heart.pk, "classifiers": ["random_forest", "logistic_regression"],
                                           "explainers": ["lime", "shap", "anchor"], "rows": {"ids": [0, 5]},
                                           "params": {**FAST, "anchor": {"threshold": 0.9, "beam_size": 2},
                                                      "classifiers": {"random_forest": {"n_estimators": 20}}}},
                            format="json")
    assert response.status_code == 201, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert job.status == "succeeded", job.error
    return job


def scenario_post(api, job, body, on_commit):
    """POST a scenario; the worker's part waits in ``queued`` (the web request must never load a model)."""
    with on_commit(execute=False) as queued, patch("explanations.whatifs.job_models_load",
                                                  side_effect=AssertionError("a model loaded in the web request")), \
            patch("explanations.scenarios.job_models_load", side_effect=AssertionError("a model loaded in the web request")):
        response = api.post(f"/api/jobs/{job.pk}/scenarios/", body, format="json")
    return response, queued


def test_the_what_if_editor_on_heart(api, other_api, client, user, heart, run_on_commit, settings,
                                     django_capture_on_commit_callbacks):
    job = heart_job(api, heart, run_on_commit)
    on_commit = django_capture_on_commit_callbacks
    check_a_scenario_is_predicted_by_every_classifier_and_explained_again(api, job, on_commit)
    check_changes_are_checked_strictly(api, job, on_commit)
    check_other_users_see_nothing(api, other_api, job)
    check_the_zip_holds_the_scenarios(api, job, on_commit)
    check_the_row_page_edits_and_lists_scenarios(client, user, job, on_commit)
    check_caps_answer_429(api, job, on_commit, settings)


def check_a_scenario_is_predicted_by_every_classifier_and_explained_again(api, job, on_commit):
    age = float(heart_value(job, 0, "age"))
    response, queued = scenario_post(api, job, {"row": 0, "changes": {"age": age + 20, "cp": "1"}}, on_commit)
    assert response.status_code == 201, response.content
    assert set(response.json()) == {"id", "status"} and response.json()["status"] == "computing"
    assert len(queued) == 1
    sid = response.json()["id"]
    waiting = api.get(f"/api/jobs/{job.pk}/scenarios/{sid}/").json()
    assert waiting["status"] == "computing" and waiting["predictions"] == {} and waiting["explanations"] == []
    queued[0]()  # the worker (eager here)
    body = api.get(f"/api/jobs/{job.pk}/scenarios/{sid}/").json()
    assert body["status"] == "ready", body["error"]
    assert body["row"] == 0 and body["changes"] == {"age": age + 20, "cp": "1"}
    assert set(body["predictions"]) == {"random_forest", "logistic_regression"}
    for prediction in body["predictions"].values():
        assert abs(sum(prediction["probabilities"].values()) - 1) < 1e-4
        assert prediction["predicted"] == max(prediction["probabilities"], key=prediction["probabilities"].get)
    # LIME and SHAP explain the edited row again (Anchors is a rule, not weights: not redone), in /explanations/'s shape
    assert sorted((e["classifier"], e["explainer"]) for e in body["explanations"]) == sorted(
        (c, x) for c in ("random_forest", "logistic_regression") for x in ("lime", "shap"))
    record_keys = set(api.get(f"/api/jobs/{job.pk}/explanations/").json()[0])
    for record in body["explanations"]:
        assert set(record) == record_keys
        assert record["predicted"] == body["predictions"][record["classifier"]]["predicted"]
        assert record["plots"] and api.get(record["plots"][0]["png"]).status_code == 200
    shap = next(e for e in body["explanations"] if e["explainer"] == "shap" and e["classifier"] == "random_forest")
    assert "age" in json.dumps(shap["data"])
    assert not job_global_plots(job=job).filter(scenario__isnull=False).exists()  # never shown as a job-wide view
    # "changing" a value to what it was predicts exactly what the job predicted for the row
    response, queued = scenario_post(api, job, {"row": 5, "changes": {"age": float(heart_value(job, 5, "age"))}}, on_commit)
    queued[0]()
    same = api.get(f"/api/jobs/{job.pk}/scenarios/{response.json()['id']}/").json()
    for classifier, prediction in same["predictions"].items():
        stored = Explanation.objects.filter(job=job, row=5, classifier=classifier).first()
        assert prediction["predicted"] == stored.predicted
        assert all(abs(prediction["probabilities"][k] - p) < 1e-6 for k, p in stored.probabilities.items())
    listed = api.get(f"/api/jobs/{job.pk}/scenarios/?row=5").json()
    assert [s["id"] for s in listed] == [same["id"]]


def heart_value(job, row, column):
    from datasets.selectors import dataset_row_values

    return dataset_row_values(dataset=job.dataset, row=row, columns=[column])[column]




def check_changes_are_checked_strictly(api, job, on_commit):
    cases = [
        ({"row": 0, "changes": {"wingspan": 3}}, "not a feature"),
        ({"row": 0, "changes": {"age": "forty"}}, "takes a finite number"),
        ({"row": 0, "changes": {"age": True}}, "takes a finite number"),
        ({"row": 0, "changes": {"cp": [1, 2]}}, "categories as text"),
        ({"row": 0, "changes": {"cp": "9"}}, "never seen"),
        ({"row": 0, "changes": {"age": 1e6}}, "far outside"),
        ({"row": 0, "changes": {"age": -1e300}}, "far outside"),
        ({"row": 0, "changes": {}}, "at least one"),
        ({"row": 0, "changes": {f"f{i}": 1 for i in range(500)}}, "at most"),
        ({"row": 0, "changes": "age=40"}, ""),
        ({"row": -1, "changes": {"age": 40}}, ""),
        ({"changes": {"age": 40}}, ""),
    ]
    for body, sentence in cases:
        response, queued = scenario_post(api, job, body, on_commit)
        assert response.status_code == 400, (body, response.content)
        assert sentence in response.json()["error"] and not queued, body
    for raw in ('{"row": 0, "changes": {"age": NaN}}', '{"row": 0, "changes": {"age": Infinity}}',
                '{"row": 0, "changes": {"age": 1e400}}'):
        response = api.post(f"/api/jobs/{job.pk}/scenarios/", raw, content_type="application/json")
        assert response.status_code == 400 and "error" in response.json(), raw
    response, queued = scenario_post(api, job, {"row": 1, "changes": {"age": 40}}, on_commit)
    assert response.status_code == 404 and "not explained" in response.json()["error"] and not queued
    assert Scenario.objects.filter(job=job).count() == 2  # only the two good ones were recorded


def check_other_users_see_nothing(api, other_api, job):
    sid = Scenario.objects.filter(job=job).first().pk
    assert other_api.post(f"/api/jobs/{job.pk}/scenarios/", {"row": 0, "changes": {"age": 40}}, format="json").status_code == 404
    assert other_api.get(f"/api/jobs/{job.pk}/scenarios/{sid}/").status_code == 404
    assert other_api.get(f"/api/jobs/{job.pk}/scenarios/").status_code == 404
    assert api.get(f"/api/jobs/{job.pk}/scenarios/999999/").status_code == 404


def check_the_zip_holds_the_scenarios(api, job, on_commit):
    def archive():
        response = api.get(f"/api/jobs/{job.pk}/download/")
        assert response.status_code == 200
        return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))

    first = archive()
    records = json.loads(first.read("scenarios.json"))
    assert {r["id"] for r in records} == set(Scenario.objects.filter(job=job).values_list("pk", flat=True))
    for record in records:
        for explanation in record["explanations"]:
            assert all(plot["png"] in first.namelist() and plot["svg"] in first.namelist() for plot in explanation["plots"])
    assert b"age = " in first.read("scenarios.csv") and b"random_forest" in first.read("scenarios.csv")
    response, queued = scenario_post(api, job, {"row": 0, "changes": {"sex": 0 if heart_value(job, 0, "sex") == "1" else 1}},
                                     on_commit)
    queued[0]()
    assert len(json.loads(archive().read("scenarios.json"))) == len(records) + 1  # a later try is in the next download


def check_the_row_page_edits_and_lists_scenarios(client, user, job, on_commit):
    client.force_login(user)
    page = client.get(f"/jobs/{job.pk}/rows/0/").content.decode()
    assert 'id="editor"' in page and "Predict the edited row" in page
    assert 'name="change_0" type="number"' in page and 'min="' in page  # age: a number box with its range
    cp = job.schema["features"].index("cp")
    assert f'<select id="id_change_{cp}" name="change_{cp}"' in page and "(this row)" in page
    values = {f"change_{i}": heart_value(job, 0, name) for i, name in enumerate(job.schema["features"])}
    with on_commit(execute=False) as queued, patch("explanations.scenarios.job_models_load",
                                                  side_effect=AssertionError("a model loaded in the web request")):
        response = client.post(f"/jobs/{job.pk}/rows/0/", {**values, "change_0": "41"})
    assert response.status_code == 302 and "#scenario-" in response["Location"]
    scenario = Scenario.objects.get(pk=int(response["Location"].rsplit("-", 1)[1]))
    assert scenario.changes == {"age": 41.0}  # only what was changed
    waiting = client.get(f"/jobs/{job.pk}/rows/0/").content.decode()
    assert "Being computed" in waiting and "data-reload-after" in waiting
    queued[0]()
    ready = client.get(f"/jobs/{job.pk}/rows/0/").content.decode()
    assert f'id="scenario-{scenario.pk}"' in ready and "Now predicts" in ready and "data-reload-after" not in ready
    assert "age" in ready and "→ <strong>41</strong>" in ready
    bad = client.post(f"/jobs/{job.pk}/rows/0/", {**values, "change_0": "9999999"})
    assert bad.status_code == 400 and "far outside" in bad.content.decode() and 'value="9999999"' in bad.content.decode()
    unchanged = client.post(f"/jobs/{job.pk}/rows/0/", values)
    assert unchanged.status_code == 400 and "Change at least one value" in unchanged.content.decode()


def check_caps_answer_429(api, job, on_commit, settings):
    count = Scenario.objects.filter(job=job).count()
    settings.EXPLAINER_SCENARIOS_PER_JOB = count
    response, queued = scenario_post(api, job, {"row": 0, "changes": {"age": 50}}, on_commit)
    assert response.status_code == 429 and "as many as one job may" in response.json()["error"] and not queued
    settings.EXPLAINER_SCENARIOS_PER_JOB, settings.EXPLAINER_SCENARIOS_PER_HOUR = 0, count
    response, queued = scenario_post(api, job, {"row": 0, "changes": {"age": 50}}, on_commit)
    assert response.status_code == 429 and "in the last hour" in response.json()["error"]


def test_a_scenario_that_breaks_ends_failed_with_a_sentence(finished, user, django_capture_on_commit_callbacks):
    from explanations.scenarios import scenario_create
    from explanations.tasks import scenario_compute

    feature = finished.schema["features"][0]
    with django_capture_on_commit_callbacks(execute=False):
        scenario = scenario_create(job=finished, row=0, changes={feature: 1})
    with patch("explanations.scenarios.job_data_build", side_effect=RuntimeError("disk on fire")):
        scenario_compute(scenario.pk)
    scenario.refresh_from_db()
    assert scenario.status == "failed" and "computing this scenario" in scenario.error
    assert "disk on fire" not in scenario.error and str(finished.pk) in scenario.error
    with django_capture_on_commit_callbacks(execute=False):
        gone = scenario_create(job=finished, row=0, changes={feature: 0})
    with patch("explanations.scenarios.job_models_load", return_value={}):
        scenario_compute(gone.pk)
    gone.refresh_from_db()
    assert gone.status == "failed" and "No trained model" in gone.error


def test_scenarios_go_to_the_interactive_queue():
    from explanations.scenarios import scenario_enqueue

    with patch("explanations.tasks.scenario_compute.apply_async") as send:
        scenario_enqueue(scenario_id=7)
    assert send.call_args.kwargs == {"args": [7], "queue": "interactive"}


def test_the_openapi_schema_documents_scenarios(api):
    schema = api.get("/api/schema/?format=json").json()
    assert {"/api/jobs/{job_id}/scenarios/", "/api/jobs/{job_id}/scenarios/{scenario_id}/"} <= set(schema["paths"])
    post = schema["paths"]["/api/jobs/{job_id}/scenarios/"]["post"]
    assert "201" in post["responses"] and "interactive" not in post["description"]
    body = post["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert {"row", "changes"} <= set(schema["components"]["schemas"][body]["properties"])
