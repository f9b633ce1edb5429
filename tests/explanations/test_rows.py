"""Which rows a job explains (explanations/rows.py): combined choices, and misclassified rows that are the same
for every classifier, the most confident mistakes first."""

import numpy as np
import pytest

from explainer_site.exceptions import ApplicationError
from explanations.job_data import job_data_build
from explanations.models import Explanation, Job, ModelRun
from explanations.rows import misclassified_rows, rows_pick, rows_spec_clean
from explanations.services.job_create import job_create, job_rerun
from explanations.whatifs import job_models_load
from tests.unit_fixtures import *  # noqa: F403

FAST = {"lime": {"num_samples": 300}, "trust": {"stability_runs": 0}}


def test_misclassified_rows_are_the_mistakes_of_any_classifier_most_confident_first():
    rows = np.array([10, 11, 12, 13, 14])
    y = np.array([0, 1, 0, 1, -1])
    probabilities = {
        "a": np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.1, 0.9], [0.0, 1.0]]),  # wrong on 11 (0.6) and 12 (0.8)
        "b": np.array([[0.3, 0.7], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6], [1.0, 0.0]]),  # wrong on 10 (0.7); 14: no label
    }
    assert misclassified_rows(rows=rows, y=y, probabilities=probabilities, count=5) == [12, 10, 11]
    assert misclassified_rows(rows=rows, y=y, probabilities=probabilities, count=2) == [12, 10]
    # the same answer whichever classifier comes first: it is one list for the whole job
    swapped = {"b": probabilities["b"], "a": probabilities["a"]}
    assert misclassified_rows(rows=rows, y=y, probabilities=swapped, count=5) == [12, 10, 11]
    assert misclassified_rows(rows=rows, y=np.array([0, 0, 1, 1, 0]), probabilities={"a": probabilities["a"]},
                              count=3) == [14]  # only real mistakes come back


def test_rows_pick_combines_choices_in_order_without_repeats_and_capped():
    test_idx, y = np.arange(20, 40), np.zeros(40, dtype=int)
    probabilities = {"a": np.tile([0.2, 0.8], (20, 1))}  # every test row predicted 1, truly 0: all mistakes, equally sure
    spec = {"any_of": [{"ids": [3, 21]}, {"misclassified": 3}, {"random": 2, "seed": 1}]}
    picked = rows_pick(spec=spec, test_idx=test_idx, y=y, probabilities=probabilities, limit=100)
    assert picked[:4] == [3, 21, 20, 22]  # 21 was picked by id already: the mistakes go on from 22
    assert len(picked) == len(set(picked)) and 4 <= len(picked) <= 6
    assert set(picked[4:]) <= set(range(20, 40))
    assert rows_pick(spec=spec, test_idx=test_idx, y=y, probabilities=probabilities, limit=3) == [3, 21, 20]
    with pytest.raises(ValueError):
        rows_pick(spec={"misclassified": 2}, test_idx=test_idx, y=y, probabilities=None, limit=10)


@pytest.mark.django_db
def test_rows_spec_any_of_is_cleaned_choice_by_choice(zoo):
    clean = rows_spec_clean(dataset=zoo, rows={"any_of": [{"random": "3", "seed": 1}, {"misclassified": 2},
                                                          {"names": ["flamingo"]}]})
    assert clean == {"any_of": [{"random": 3, "seed": 1}, {"misclassified": 2}, {"ids": [23], "names": ["flamingo"]}]}
    assert rows_spec_clean(dataset=zoo, rows={"random": 2}) == {"random": 2, "seed": 0}  # one choice: as before
    for bad in ({"any_of": []}, {"any_of": {"random": 3}}, {"any_of": [{"random": 3}], "ids": [1]},
                {"any_of": [{"any_of": [{"random": 1}]}]}, {"any_of": [{"random": 0}]}, {"any_of": [{"ids": [999]}]},
                {"any_of": [{"random": 1}] * 11}, {"any_of": ["random"]}):
        with pytest.raises(ApplicationError) as error:
            rows_spec_clean(dataset=zoo, rows=bad)
        assert error.value.extra["field"] == "rows" and error.value.message.endswith("."), bad


@pytest.mark.django_db
def test_misclassified_rows_are_the_same_for_every_classifier_of_a_job(heart, user, client, run_on_commit):
    with run_on_commit():
        job = job_create(owner=user, dataset=heart, classifiers=["logistic_regression", "decision_tree"],
                         explainers=["lime"], rows={"misclassified": 4}, params=FAST)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    runs = {run.classifier: run.rows for run in ModelRun.objects.filter(job=job)}
    assert runs["logistic_regression"] == runs["decision_tree"] and len(runs["decision_tree"]) == 4
    by_classifier = {c: set(Explanation.objects.filter(job=job, classifier=c).values_list("row", flat=True)) for c in runs}
    assert by_classifier["logistic_regression"] == by_classifier["decision_tree"]  # a row page lacks no classifier
    data = job_data_build(dataset=heart, schema=job.schema, test_size=job.params["test_size"], seed=job.params["seed"])
    probabilities = {key: p.predict_proba(data.X[data.test_idx]) for key, p in job_models_load(job=job, data=data).items()}
    expected = misclassified_rows(rows=data.test_idx, y=data.y[data.test_idx], probabilities=probabilities, count=4)
    assert runs["decision_tree"] == expected  # the most confident mistakes of either classifier, in that order
    for row in expected:  # each is a mistake of at least one of them
        assert any(e.predicted != e.true_label for e in Explanation.objects.filter(job=job, row=row))
    client.force_login(user)
    page = client.get(f"/jobs/{job.pk}/rows/{expected[0]}/").content.decode()
    assert "Logistic regression: predicts" in page and "Decision tree: predicts" in page  # every classifier, one row
    assert 'id="row-values"' in page and "(the answer)" in page  # and the row's own values


@pytest.mark.django_db
def test_a_job_combines_random_and_misclassified_rows_and_its_rerun_does_too(api, client, user, heart, run_on_commit):
    with run_on_commit():
        response = api.post("/api/jobs/", {"dataset": heart.pk, "classifiers": ["logistic_regression"],
                                           "explainers": ["lime"], "rows": {"any_of": [{"random": 3, "seed": 1},
                                                                                       {"misclassified": 2}]},
                                           "params": FAST}, format="json")
    assert response.status_code == 201, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert job.status == "succeeded", job.error
    assert job.rows_spec == {"any_of": [{"random": 3, "seed": 1}, {"misclassified": 2}]}
    rows = ModelRun.objects.get(job=job).rows
    assert 4 <= len(rows) <= 5 and len(set(rows)) == len(rows)
    wrong = [e for e in Explanation.objects.filter(job=job, row__in=rows[-2:])]
    assert len({e.row for e in Explanation.objects.filter(job=job)}) == len(rows)
    assert wrong and all(e.predicted != e.true_label for e in wrong if e.row not in rows[:3])
    with run_on_commit():
        again = job_rerun(job=job)
    assert again.rows_spec == job.rows_spec
    client.force_login(user)
    page = client.get("/jobs/").content.decode()
    assert "3 random rows (seed 1) + up to 2 misclassified rows" in page


@pytest.mark.django_db
def test_the_job_form_adds_misclassified_rows_to_random_ones(client, user, heart, run_on_commit):
    client.force_login(user)
    with run_on_commit():
        response = client.post("/jobs/new/", {"dataset": heart.pk, "classifiers": ["logistic_regression"],
                                              "explainers": ["lime"], "rows_mode": "random", "rows_count": "2",
                                              "rows_also_misclassified": "2", "lime__num_samples": "300",
                                              "trust__stability_runs": "0"})
    assert response.status_code == 302, response.content.decode()[:2000]
    job = Job.objects.latest("pk")
    assert job.rows_spec == {"any_of": [{"random": 2, "seed": 0}, {"misclassified": 2}]}
    assert 'name="rows_also_misclassified"' in client.get("/jobs/new/").content.decode()


@pytest.mark.django_db
def test_a_rerun_of_a_job_made_before_a_setting_existed_keeps_what_that_job_did(user, heart):
    """LIME's ``shared_samples`` came later (its entry's ``params_before``): older jobs drew samples per row."""
    job = job_create(owner=user, dataset=heart, classifiers=["logistic_regression"], explainers=["lime"],
                     rows={"ids": [0, 1]}, params=FAST)  # queued on commit, which this test never reaches
    assert job.params["lime"]["shared_samples"] is True
    assert job_rerun(job=job).params["lime"]["shared_samples"] is True
    older = {name: value for name, value in job.params["lime"].items() if name != "shared_samples"}
    Job.objects.filter(pk=job.pk).update(params={**job.params, "lime": older})
    job.refresh_from_db()
    again = job_rerun(job=job)
    assert again.params["lime"] == {**older, "shared_samples": False}
