"""A job's plots speak about one class, and a column without missing values shows no "(missing)" (issue 17, 7 and 9).

A passenger list where most people died: the classifier predicts "Died" for most test rows, the class the
partial dependence used to follow, while the SHAP summary followed the second class, "Survived".
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from explanations.models import Job, Plot, WhatIf
from tests.unit_fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db

FAST = {"shap": {"background_size": 20, "nsamples": 100}, "trust": {"stability_runs": 2, "background_rows": 10}}


@pytest.fixture
def passengers(user):
    from datasets.services import dataset_create, dataset_schema_set

    rng = np.random.default_rng(0)
    n = 160
    sex = rng.choice(["female", "male"], size=n, p=[0.35, 0.65])
    age = rng.integers(1, 80, size=n)
    fare = np.round(rng.gamma(2.0, 15.0, size=n), 2)
    survived = (rng.random(n) < np.where(sex == "female", 0.7, 0.15)).astype(int)
    frame = pd.DataFrame({"sex": sex, "age": age, "fare": fare, "survived": survived})
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    dataset = dataset_create(owner=user, file=SimpleUploadedFile("passengers.csv", buffer.getvalue().encode()),
                             name="Passengers")
    return dataset_schema_set(dataset=dataset, label="survived", features=["sex", "age", "fare"], categorical=["sex"],
                              class_names={"0": "Died", "1": "Survived"})


def test_every_plot_of_a_job_names_the_same_class_and_no_phantom_missing(api, passengers, run_on_commit):
    with run_on_commit():
        response = api.post("/api/jobs/", {"dataset": passengers.pk, "classifiers": ["logistic_regression"],
                                           "explainers": ["shap"], "rows": {"ids": [0, 1, 2]},
                                           "params": {**FAST, "whatif": {"features": ["sex", "age"]}}}, format="json")
    assert response.status_code == 201, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert job.status == "succeeded", job.error

    with Plot.objects.get(job=job, kind="shap_summary").svg.open() as file:
        summary = file.read().decode()
    assert "Survived" in summary and "Died" not in summary
    curves = Plot.objects.filter(job=job, kind__in=["partial_dependence", "whatif"])
    assert curves.count() >= 2 + 2 * 3
    for plot in curves:
        assert plot.title.endswith("probability of Survived"), plot.title
        assert plot.alt.startswith("Probability of Survived"), plot.alt

    for whatif in WhatIf.objects.filter(job=job, feature="sex"):
        assert whatif.grid_labels == ["female", "male"]  # the column has no missing value: no "(missing)" point
        assert "goes from" not in whatif.plot.alt and "highest at" in whatif.plot.alt  # no trend across categories
    ages = WhatIf.objects.get(job=job, row=None, feature="age")
    assert "goes from" in ages.plot.alt  # numbers keep their order
