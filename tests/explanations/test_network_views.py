"""Inside the network (explanations/network_views.py): an MNIST job's CNN looked into through the API: its
layers, feature visualisations, neuron groups and an adversarial example, each drawn by a worker (queued
on commit, run eagerly here as the scenario tests do) and never in the web request; every bad input a
sentence with a 400/404; the page and its links."""

from datetime import timedelta
from unittest.mock import patch

import pytest
from django.utils import timezone

from explanations.models import Job, NetworkView, Plot
from explanations.selectors import job_global_plots
from explanations.services.job_create import job_create
from tests.explanations.test_image import mnist_upload
from tests.unit_fixtures import *  # noqa: F403

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("one_torch_thread")]




@pytest.fixture
def mnist_job(user, run_on_commit) -> Job:
    from datasets.services import dataset_create, dataset_schema_set

    dataset = dataset_create(owner=user, file=mnist_upload(400), name="MNIST")
    pixels = [c for c in dataset.column_names if c != "label"]
    dataset = dataset_schema_set(dataset=dataset, label="label", features=pixels, image_shape=[28, 28])
    with run_on_commit():
        job = job_create(owner=user, dataset=dataset, classifiers=["cnn"], explainers=["saliency"], rows={"ids": [1, 4]},
                         params={"classifiers": {"cnn": {"epochs": 8, "channels": 8}}})
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    return job


def post(api, path, body, on_commit):
    """POST; the worker's part waits in ``queued`` (the web request must never load the network)."""
    with on_commit(execute=False) as queued, \
            patch("explanations.job_steps.run_predictor", side_effect=AssertionError("a model loaded in the web request")):
        response = api.post(path, body, format="json")
    return response, queued


def drawn(api, job, body_path, body, on_commit) -> dict:
    response, queued = post(api, f"/api/jobs/{job.pk}/{body_path}", body, on_commit)
    assert response.status_code == 202, response.content
    assert set(response.json()) == {"id", "status"} and response.json()["status"] == "drawing"
    vid = response.json()["id"]
    waiting = api.get(f"/api/jobs/{job.pk}/network/views/{vid}/")
    assert waiting.status_code == 202 and waiting.json()["plots"] == []
    assert len(queued) == 1
    queued[0]()  # the worker (eager here)
    done = api.get(f"/api/jobs/{job.pk}/network/views/{vid}/")
    assert done.status_code == 200 and done.json()["status"] == "ready", done.json()["error"]
    return done.json()


def test_inside_the_network_of_an_mnist_cnn(api, other_api, client, user, mnist_job, finished,
                                            django_capture_on_commit_callbacks):
    job, on_commit = mnist_job, django_capture_on_commit_callbacks
    check_the_layers_are_listed(api, job)
    check_feature_visualisation(api, job, on_commit)
    check_neuron_groups(api, job, on_commit)
    check_the_adversarial_example(api, job, on_commit)
    check_bad_inputs_are_sentences(api, job, finished, on_commit)
    check_other_users_see_nothing(other_api, job)
    check_the_page(client, user, job, on_commit)


def check_the_layers_are_listed(api, job):
    body = api.get(f"/api/jobs/{job.pk}/network/").json()
    assert [(layer["name"], layer["channels"], layer["height"]) for layer in body["layers"]] == [("conv1", 8, 28), ("conv2", 16, 14)]
    assert body["classes"] == [str(d) for d in range(10)] and body["rows"] == [1, 4]
    assert body["limits"]["channels_max"] == 16 and body["defaults"]["epsilon"] == 0.05


def check_the_layers_match_the_trained_module(job):
    from explanations.job_steps import job_data, run_predictor
    from explanations.ml.network_inside import conv_layers
    from explanations.network_views import network_layers

    run = job.runs.get()
    module = run_predictor(job=job, run=run, data=job_data(job)).module
    assert [(layer.name, layer.channels) for layer in conv_layers(module)] == [
        (layer["name"], layer["channels"]) for layer in network_layers(job=job)]


def check_feature_visualisation(api, job, on_commit):
    check_the_layers_match_the_trained_module(job)
    body = drawn(api, job, "network/visualise/", {"layer": "conv2", "channels": [0, 3, 5]}, on_commit)
    assert body["kind"] == "visualise" and body["channels"] == [0, 3, 5] and body["layer"] == "conv2"
    assert all(after > before for before, after in zip(body["activation_before"], body["activation_after"]))
    [plot] = body["plots"]
    assert plot["kind"] == "feature_visualisation" and "channels 0, 3, 5" in plot["alt"]
    assert api.get(plot["png"]).status_code == 200 and api.get(plot["svg"]).status_code == 200
    # Not a job-wide plot; asking the same again reuses the drawn one (200, nothing queued).
    assert not job_global_plots(job=job).filter(network_view__isnull=False).exists()
    again, queued = post(api, f"/api/jobs/{job.pk}/network/visualise/", {"layer": "conv2", "channels": [0, 3, 5]}, on_commit)
    assert again.status_code == 200 and again.json() == {"id": body["id"], "status": "ready"} and not queued


def check_neuron_groups(api, job, on_commit):
    body = drawn(api, job, "network/groups/", {"row": 4, "layer": "conv1", "groups": 3}, on_commit)
    assert body["row"] == 4 and [g["group"] for g in body["groups"]] == [1, 2, 3]
    assert abs(sum(g["share"] for g in body["groups"]) - 1) < 1e-4
    [plot] = body["plots"]
    assert plot["kind"] == "neuron_groups" and "3 neuron groups" in plot["alt"]


def check_the_adversarial_example(api, job, on_commit):
    explained = job.explanations.get(row=1)
    target = "3" if explained.predicted != "3" else "5"
    body = drawn(api, job, "adversarial/", {"row": 1, "target": target, "epsilon": 0.3, "alpha": 0.02, "iterations": 100},
                 on_commit)
    assert body["predicted_before"] == explained.predicted
    assert body["reached"] is True and body["predicted_after"] == target, {k: body[k] for k in ("steps", "linf", "probability_before", "probability_after", "predicted_after")}
    assert 0 < body["linf"] <= 0.3 + 1e-6 and 1 <= body["steps"] <= 100
    assert [p["kind"] for p in body["plots"]] == ["adversarial", "adversarial_groups", "adversarial_groups"]
    assert set(body["groups"]) == {"original", "adversarial"}
    # A budget far too small: the attack says it did not get there, still within ε.
    small = drawn(api, job, "adversarial/", {"row": 1, "target": target, "epsilon": 0.001, "alpha": 0.001, "iterations": 3},
                  on_commit)
    assert small["reached"] is False and small["predicted_after"] == explained.predicted and small["linf"] <= 0.001 + 1e-6


BAD = [
    ("network/visualise/", {"layer": "conv9", "channels": [0]}, 400, "no layer “conv9”; pick one of conv1, conv2"),
    ("network/visualise/", {"layer": "conv1", "channels": [8]}, 400, "channels 0 to 7; there is no channel 8"),
    ("network/visualise/", {"layer": "conv1", "channels": []}, 400, "lists the channels"),
    ("network/visualise/", {"layer": "conv2", "channels": list(range(17))}, 400, "at most 16 channels"),
    ("network/visualise/", {"layer": "conv1", "channels": ["one"]}, 400, "whole number"),
    ("network/visualise/", {"layer": "conv1", "channels": [True]}, 400, "whole number"),
    ("network/visualise/", ["conv1"], 400, "JSON object"),
    ("network/groups/", {"row": 999, "layer": "conv1", "groups": 3}, 404, "Row 999 was not explained"),
    ("network/groups/", {"row": 1, "layer": "conv1", "groups": 1}, 400, "from 2 to 10"),
    ("network/groups/", {"row": 1, "layer": "conv1", "groups": 11}, 400, "from 2 to 10"),
    ("network/groups/", {"row": 1, "layer": "conv1", "groups": 2.5}, 400, "whole number"),
    ("network/groups/", {"layer": "conv1"}, 400, "whole number"),
    ("adversarial/", {"row": 1, "target": "cat"}, 400, "“cat” is not a class of this job"),
    ("adversarial/", {"row": 1}, 400, "Nothing is not a class"),
    ("adversarial/", {"row": 1, "target": "3", "epsilon": 0}, 400, "above 0 and at most 1"),
    ("adversarial/", {"row": 1, "target": "3", "epsilon": 1.5}, 400, "above 0 and at most 1"),
    ("adversarial/", {"row": 1, "target": "3", "alpha": -0.1}, 400, "above 0 and at most 1"),
    ("adversarial/", {"row": 1, "target": "3", "alpha": "NaN"}, 400, "above 0 and at most 1"),
    ("adversarial/", {"row": 1, "target": "3", "iterations": 0}, 400, "from 1 to 100"),
    ("adversarial/", {"row": 1, "target": "3", "iterations": 101}, 400, "from 1 to 100"),
    ("adversarial/", {"row": -1, "target": "3"}, 404, "Row -1 was not explained"),
    # hostile values: never a 5xx, never an echo of the whole value
    ("adversarial/", {"row": "9" * 5000, "target": "3"}, 400, "whole number"),
    ("adversarial/", {"row": 1, "target": "3", "epsilon": "1e-400"}, 400, "above 0 and at most 1"),
    ("adversarial/", {"row": 1, "target": ["3"]}, 400, "is not a class of this job"),
    ("adversarial/", {"row": 1, "target": "x" * 5000}, 400, "is not a class of this job"),
    ("network/visualise/", {"layer": {"name": "conv1"}, "channels": [0]}, 400, "no layer"),
    ("network/visualise/", {"layer": "conv1", "channels": [[0]]}, 400, "whole number"),
    ("network/visualise/", {"layer": "conv1", "channels": ["9" * 5000]}, 400, "whole number"),
    ("network/groups/", {"row": 10 ** 30, "layer": "conv1"}, 400, "too large"),  # the strict JSON parser
]


def check_bad_inputs_are_sentences(api, job, table_job, on_commit):
    views = NetworkView.objects.count()
    for path, body, code, sentence in BAD:
        response, queued = post(api, f"/api/jobs/{job.pk}/{path}", body, on_commit)
        assert response.status_code == code, (path, str(body)[:80], response.content[:300])
        assert sentence in response.json()["error"], (path, str(body)[:80], response.json())
        assert len(response.json()["error"]) < 400 and not queued
    response = api.generic("POST", f"/api/jobs/{job.pk}/adversarial/", "null", content_type="application/json")
    assert response.status_code == 400 and response.status_code < 500
    assert NetworkView.objects.count() == views
    for path in ("network/visualise/", "network/groups/", "adversarial/"):
        response = api.post(f"/api/jobs/{table_job.pk}/{path}", {"row": 0, "layer": "conv1", "channels": [0]}, format="json")
        assert response.status_code == 400 and "for image jobs" in response.json()["error"]
    assert api.get(f"/api/jobs/{table_job.pk}/network/").status_code == 400
    Job.objects.filter(pk=job.pk).update(status="running")
    response = api.post(f"/api/jobs/{job.pk}/network/visualise/", {"layer": "conv1", "channels": [0]}, format="json")
    assert response.status_code == 400 and "once it has finished" in response.json()["error"]
    Job.objects.filter(pk=job.pk).update(status="succeeded")
    assert api.get(f"/api/jobs/{job.pk}/network/views/999999/").status_code == 404
    assert api.get(f"/api/jobs/{job.pk}/network/views/abc/").status_code == 404


def check_other_users_see_nothing(other_api, job):
    view = NetworkView.objects.filter(job=job).first()
    for path in (f"/api/jobs/{job.pk}/network/", f"/api/jobs/{job.pk}/network/views/{view.pk}/"):
        assert other_api.get(path).status_code == 404
    response = other_api.post(f"/api/jobs/{job.pk}/network/visualise/", {"layer": "conv1", "channels": [0]}, format="json")
    assert response.status_code == 404


def check_the_page(client, user, job, on_commit):
    client.force_login(user)
    results = client.get(f"/jobs/{job.pk}/results/").content.decode()
    assert f"/jobs/{job.pk}/network/" in results
    row_page = client.get(f"/jobs/{job.pk}/rows/1/").content.decode()
    assert f"/jobs/{job.pk}/network/?row=1" in row_page
    page = client.get(f"/jobs/{job.pk}/network/?row=1")
    text = page.content.decode()
    assert page.status_code == 200 and "Inside the network" in text
    assert 'name="layer"' in text and 'name="target"' in text and 'name="epsilon"' in text
    plot = Plot.objects.filter(network_view__job=job, kind="feature_visualisation").first()
    assert f"/plots/{plot.pk}.png" in text and plot.alt[:40] in text
    # The page's forms ask for a view (drawn by a worker) and come back to it; a bad value is said by its field.
    with on_commit(execute=False) as queued:
        response = client.post(f"/jobs/{job.pk}/network/", {"kind": "visualise", "layer": "conv1", "channels": "1, 2"})
    assert response.status_code == 302 and len(queued) == 1
    with on_commit(execute=False) as queued:
        response = client.post(f"/jobs/{job.pk}/network/", {"kind": "adversarial", "row": "1", "target": "3",
                                                            "epsilon": "2", "alpha": "0.05", "iterations": "10"})
    assert response.status_code == 400 and "above 0 and at most 1" in response.content.decode() and not queued
    check_the_zip_holds_the_views(job)


def check_the_zip_holds_the_views(job):
    import io
    import json
    import zipfile

    from django.core.files.storage import default_storage

    from explanations.exports import job_zip_fresh

    with default_storage.open(job_zip_fresh(job=job), "rb") as handle:
        archive = zipfile.ZipFile(io.BytesIO(handle.read()))
    records = json.loads(archive.read("network_views.json"))
    assert {r["kind"] for r in records} == {"visualise", "groups", "adversarial"}
    for record in records:
        assert record["status"] == "ready" and all(p["png"] in archive.namelist() for p in record["plots"])


def test_the_queue_is_gpu_and_a_broken_broker_fails_the_view_with_a_sentence(mnist_job):
    from explanations.network_views import network_view_enqueue

    view = NetworkView.objects.create(job=mnist_job, kind="visualise", params={"layer": "conv1", "channels": [0]})
    with patch("explanations.tasks.network_view_draw.apply_async") as send:
        network_view_enqueue(view_id=view.pk)
    assert send.call_args.kwargs == {"args": [view.pk], "queue": "gpu"}
    with patch("explanations.tasks.network_view_draw.apply_async", side_effect=OSError("broker away")):
        network_view_enqueue(view_id=view.pk)
    view.refresh_from_db()
    assert view.status == "failed" and "queue is unavailable" in view.error


def test_a_failure_on_the_worker_ends_the_view_failed_with_a_sentence(mnist_job):
    from explanations.tasks import network_view_draw

    view = NetworkView.objects.create(job=mnist_job, kind="groups", params={"row": 1, "layer": "conv1", "groups": 2})
    with patch("explanations.network_views.groups_draw", side_effect=RuntimeError("internal detail")):
        network_view_draw(view.pk)
    view.refresh_from_db()
    assert view.status == "failed" and "internal detail" not in view.error
    assert "looking inside the network" in view.error and str(mnist_job.pk) in view.error
    network_view_draw(view.pk)  # a redelivered message leaves the failed view as it is
    view.refresh_from_db()
    assert view.status == "failed"


def test_the_openapi_schema_documents_the_network_routes(api):
    schema = api.get("/api/schema/?format=json").json()
    assert {"/api/jobs/{job_id}/network/", "/api/jobs/{job_id}/network/visualise/", "/api/jobs/{job_id}/network/groups/",
            "/api/jobs/{job_id}/network/views/{view_id}/", "/api/jobs/{job_id}/adversarial/"} <= set(schema["paths"])
    assert "202" in schema["paths"]["/api/jobs/{job_id}/adversarial/"]["post"]["responses"]


def test_the_hourly_cap_answers_429_and_a_stuck_view_is_asked_again(api, mnist_job, settings,
                                                                   django_capture_on_commit_callbacks):
    settings.EXPLAINER_NETWORK_VIEWS_PER_HOUR = 1
    on_commit = django_capture_on_commit_callbacks
    first, queued = post(api, f"/api/jobs/{mnist_job.pk}/network/visualise/", {"layer": "conv1", "channels": [0]}, on_commit)
    assert first.status_code == 202 and len(queued) == 1
    # The same request while it is drawn answers that view (nothing more queued), even past the cap.
    same, queued = post(api, f"/api/jobs/{mnist_job.pk}/network/visualise/", {"layer": "conv1", "channels": [0]}, on_commit)
    assert same.status_code == 202 and same.json()["id"] == first.json()["id"] and not queued
    other, queued = post(api, f"/api/jobs/{mnist_job.pk}/network/visualise/", {"layer": "conv1", "channels": [1]}, on_commit)
    assert other.status_code == 429 and "in the last hour" in other.json()["error"] and not queued
    # Drawing for longer than ten minutes: its message was lost; asking again makes a new one.
    settings.EXPLAINER_NETWORK_VIEWS_PER_HOUR = 0
    NetworkView.objects.filter(pk=first.json()["id"]).update(created_at=timezone.now() - timedelta(minutes=11))
    again, queued = post(api, f"/api/jobs/{mnist_job.pk}/network/visualise/", {"layer": "conv1", "channels": [0]}, on_commit)
    assert again.status_code == 202 and again.json()["id"] != first.json()["id"] and len(queued) == 1
