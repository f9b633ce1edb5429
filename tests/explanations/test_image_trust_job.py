"""An MNIST job end to end with the image trust scores: every explanation carries them (or says why not), the sanity
check and ROAR land in the job summary (API and page)."""

import pytest

from explanations.models import Explanation
from tests.explanations.test_image import CNN_FAST, mnist, mnist_upload  # noqa: F401
from tests.unit_fixtures import *  # noqa: F403

TRUST = {"stability_runs": 2, "sanity_images": 1, "roar_images": 60, "roar_epochs": 5}
FAST = {"lime": {"num_samples": 100}, "integrated_gradients": {"steps": 8}}
FIELDS = ("deletion_auc", "insertion_auc", "faithfulness", "stability", "agreement", "sanity")


@pytest.fixture
def trusted_job(mnist, user, run_on_commit):  # noqa: F811
    from explanations.services.job_create import job_create

    with run_on_commit():
        job = job_create(owner=user, dataset=mnist, classifiers=["cnn"], explainers=["lime", "integrated_gradients"],
                         rows={"ids": [1, 4]}, params={**FAST, "trust": TRUST, "classifiers": {"cnn": CNN_FAST}})
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    return job


@pytest.mark.django_db
def test_every_image_explanation_carries_the_trust_fields(trusted_job):
    explanations = {(e.explainer, e.row): e.trust for e in Explanation.objects.filter(job=trusted_job)}
    assert len(explanations) == 4
    for (method, row), trust in explanations.items():
        assert set(FIELDS) <= set(trust), (method, row)
        assert 0 <= trust["deletion_auc"] <= 1 and 0 <= trust["insertion_auc"] <= 1
        assert -1 <= trust["faithfulness"] <= 1 and -1 <= trust["agreement"] <= 1
        assert trust["agreement"] == explanations[("integrated_gradients" if method == "lime" else "lime", row)]["agreement"]
    lime, ig = explanations[("lime", 1)], explanations[("integrated_gradients", 1)]
    assert -1 <= lime["stability"] <= 1 and lime["stability_seeds"] == [1, 2]  # seed 0 + 1, + 2
    assert ig["stability"] is None and "same map for any seed" in ig["not_measured"]["stability"]
    # the first row gets the sanity check, layer by layer from the top; the second says why it has none
    assert [layer["layer"].split(" (")[0] for layer in ig["sanity_layers"]] == ["Linear 9", "Linear 7", "Conv2d 3", "Conv2d 0"]
    assert ig["sanity"] == ig["sanity_layers"][0]["similarity"] and isinstance(ig["sanity_fails"], bool)
    assert explanations[("lime", 4)]["sanity"] is None
    assert "first 1 explained images" in explanations[("lime", 4)]["not_measured"]["sanity"]


@pytest.mark.django_db
def test_the_job_summary_has_the_roar_table_and_image_readings(trusted_job, client, user):
    client.force_login(user)
    body = client.get(f"/api/jobs/{trusted_job.pk}/summary/").json()
    roar = body["roar"]["cnn"]
    assert roar["shares"] == [10, 30, 50] and roar["n_train"] == 60 and roar["n_test"] == 20 and roar["epochs"] == 5
    assert [m["method"] for m in roar["methods"]] == ["lime", "integrated_gradients", "random"]
    assert roar["methods"][-1]["label"] == "Random pixels (baseline)"
    for method in roar["methods"]:
        assert len(method["accuracy"]) == len(method["drop"]) == 3
        assert method["drop"][0] == pytest.approx(roar["baseline_accuracy"] - method["accuracy"][0], abs=1e-3)
    assert {"stability", "sanity", "agreement"} <= set(body["measured"])
    readings = {m["key"]: m["reading"] for m in body["metrics"]}
    assert "pixels" in readings["deletion_auc"] and "randomised" not in readings["sanity"]
    entry = next(e for e in body["table"] if e["explainer"] == "integrated_gradients")
    assert isinstance(entry["sanity_fails"], bool)
    page = client.get(f"/jobs/{trusted_job.pk}/results/").content.decode()
    assert "Remove and retrain" in page and "Random pixels (baseline)" in page and "Sanity" in page
    row_page = client.get(f"/jobs/{trusted_job.pk}/rows/4/").content.decode()
    assert "Not measured: checked on the first 1 explained images" in row_page


@pytest.mark.gpu
@pytest.mark.django_db
def test_image_trust_runs_on_cuda(trusted_job):
    run = trusted_job.runs.get()
    assert run.metrics["device"].startswith("cuda") and run.metrics["roar"]["methods"]
    assert all(e.trust["deletion_auc"] is not None for e in Explanation.objects.filter(job=trusted_job))


@pytest.mark.django_db
def test_new_image_job_form_takes_the_image_trust_settings(client, user, mnist):  # noqa: F811
    from explanations.models import Job

    client.force_login(user)
    page = client.get(f"/jobs/new/?dataset={mnist.pk}").content.decode()
    assert 'name="trust__sanity_images"' in page and 'name="trust__roar_images"' in page
    response = client.post("/jobs/new/", {"dataset": mnist.pk, "classifiers": ["cnn"], "explainers": ["lime"],
                                          "rows_mode": "ids", "rows_ids": "1", "trust__sanity_images": "2",
                                          "trust__roar_images": "0", "trust__roar_epochs": "4"})
    assert response.status_code == 302, response.content.decode()[:2000]
    trust = Job.objects.get().params["trust"]
    assert (trust["sanity_images"], trust["roar_images"], trust["roar_epochs"]) == (2, 0, 4)
    response = client.post("/jobs/new/", {"dataset": mnist.pk, "classifiers": ["cnn"], "explainers": ["lime"],
                                          "rows_mode": "ids", "rows_ids": "1", "trust__roar_epochs": "0"})
    assert response.status_code == 400 and "Epochs per ROAR retraining must be between 1 and 50" in response.content.decode()
