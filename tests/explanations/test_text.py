"""Text datasets: SMS spam recognised at upload, TF-IDF classifiers, LIME/Anchors/SHAP on words, a job end to end."""

import io
import json
import zipfile

import numpy as np
import pandas as pd
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from datasets.services import dataset_create, dataset_schema_default, dataset_schema_set
from explainer_site.exceptions import ApplicationError
from explanations.exports import job_zip_fresh
from explanations.job_data import JobData
from explanations.ml.explainers.text import TEXT_EXPLAINERS
from explanations.ml.plots import figure_render
from explanations.ml.plots.text import TEXT_PLOTTERS, text_alt_text
from explanations.models import Explanation, Plot
from explanations.services.job_create import job_create
from tests.unit_fixtures import *  # noqa: F403
from tests.unit_fixtures import SHARED

SMS_ROWS = 400
FAST = {"lime": {"num_samples": 300}, "anchor": {"threshold": 0.9, "beam_size": 2, "max_anchor_size": 2},
        "shap": {"nsamples": 120}}


def sms_upload(rows: int = SMS_ROWS) -> SimpleUploadedFile:
    """A fixed sample of the SMS collection (about 1 in 7 spam), as the user would upload it."""
    frame = pd.read_csv(SHARED / "sms_spam.csv").sample(rows, random_state=0)
    return SimpleUploadedFile("sms_spam.csv", frame.to_csv(index=False).encode(), content_type="text/csv")


@pytest.fixture
def sms(user):
    dataset = dataset_create(owner=user, file=sms_upload(), name="SMS")
    return dataset_schema_set(dataset=dataset, label="label", features=["text"], text=["text"])


@pytest.fixture(scope="module")
def sms_data() -> JobData:
    from explanations.job_data import text_data_from_frame

    frame = pd.read_csv(SHARED / "sms_spam.csv").sample(SMS_ROWS, random_state=0).reset_index(drop=True)
    schema = {"label": "label", "features": ["text"], "categorical": [], "class_names": {"ham": "ham", "spam": "spam"},
              "row_name": "", "text": ["text"]}
    return text_data_from_frame(frame, schema=schema, test_size=0.25, seed=0)


@pytest.fixture(scope="module")
def spam_predictor(sms_data):
    from explanations.ml.text_models import text_classifier_fit, text_predictor_build

    model = text_classifier_fit("naive_bayes", {"alpha": 0.1}, sms_data.space, sms_data.X[sms_data.train_idx],
                                sms_data.y[sms_data.train_idx], seed=0)
    return text_predictor_build("naive_bayes", model, sms_data.space)


# ---------------------------------------------------------------- datasets


@pytest.mark.django_db
def test_sms_upload_is_recognised_as_text_and_the_form_proposes_it(user):
    dataset = dataset_create(owner=user, file=sms_upload(), name="SMS")
    assert {c["name"]: c["dtype"] for c in dataset.columns}["text"] == "text"
    default = dataset_schema_default(dataset=dataset)
    assert default["label"] == "label" and default["text"] == ["text"] and default["features"] == ["text"]


@pytest.mark.django_db
def test_text_schema_is_validated_and_tables_stay_as_they_were(user, heart):
    dataset = dataset_create(owner=user, file=sms_upload(), name="SMS")
    with pytest.raises(ApplicationError, match="free text") as error:  # a text column ticked as a table feature
        dataset_schema_set(dataset=dataset, label="label", features=["text"])
    assert error.value.extra["field"] == "features"
    for text, message in ((["label"], "column you predict"), (["message"], "no column"), (["text", "label"], "one column")):
        with pytest.raises(ApplicationError, match=message) as error:
            dataset_schema_set(dataset=dataset, label="label", features=[], text=text)
        assert error.value.extra["field"] == "text"
    schema = dataset_schema_set(dataset=dataset, label="label", features=[], text=["text"]).schema
    assert schema["text"] == ["text"] and schema["features"] == ["text"] and schema["categorical"] == []
    assert "text" not in heart.schema and "image_shape" not in heart.schema  # tabular schemas carry neither key


# ---------------------------------------------------------------- classifiers and explainers (no database)


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["logistic_regression", "svm", "naive_bayes"])
def test_tfidf_classifiers_learn_spam(key, sms_data):
    from explanations.ml.catalogue import classifier_for
    from explanations.ml.text_models import text_classifier_fit, text_predictor_build

    params = {p.name: p.default for p in classifier_for(key, "text").params}
    model = text_classifier_fit(key, params, sms_data.space, sms_data.X[sms_data.train_idx],
                                sms_data.y[sms_data.train_idx], seed=0)
    proba = text_predictor_build(key, model, sms_data.space).predict_proba(sms_data.X[sms_data.test_idx])
    assert proba.shape == (len(sms_data.test_idx), 2)
    assert (proba.argmax(axis=1) == sms_data.y[sms_data.test_idx]).mean() > 0.9


@pytest.mark.django_db
@pytest.mark.parametrize("key", list(TEXT_EXPLAINERS))
def test_text_explainer_contract(key, sms_data, spam_predictor):
    spam = [int(i) for i in sms_data.test_idx if sms_data.y[i] == 1][:1]
    rows = [*spam, int(sms_data.test_idx[0])]
    explainer = TEXT_EXPLAINERS[key](**FAST[key])
    assert explainer.fit(sms_data.X[sms_data.train_idx], spam_predictor, sms_data.space, seed=3) is explainer
    explanations = explainer.explain(sms_data.X[rows], rows)
    assert [e.row for e in explanations] == rows
    for text, explanation in zip(sms_data.X[rows], explanations):
        data = explanation.data
        assert explanation.method == key and explanation.meta["seed"] == 3
        assert explanation.predicted == int(np.argmax(explanation.probabilities)) == data["label"]
        json.dumps(data)  # stored as JSON
        if key == "anchor":
            assert 0 <= data["precision"] <= 1 and 0 <= data["coverage"] <= 1
            assert all(word in text for word in data["rule"])
        else:
            weights = [abs(w) for _, w in data["words"]]
            assert weights == sorted(weights, reverse=True) and len(weights) <= 10
            assert all(word in text for word, _ in data["words"])
        if key == "shap":  # SHAP values add up to the probability (partition explainer, exact for a text masker)
            total = data["base_value"] + sum(v for _, v in data["tokens"])
            assert total == pytest.approx(explanation.probabilities[data["label"]], abs=1e-3)
    spam_explanation = explanations[0]
    assert spam_explanation.predicted == 1 and (key == "anchor" or spam_explanation.data["words"][0][1] > 0)
    again = TEXT_EXPLAINERS[key](**FAST[key]).fit(sms_data.X[sms_data.train_idx], spam_predictor, sms_data.space, seed=3)
    assert again.explain(sms_data.X[rows[:1]], rows[:1])[0].data == spam_explanation.data  # same seed, same words
    figure = TEXT_PLOTTERS[key](spam_explanation, sms_data.space, title="Why row 1 is predicted spam", subtitle="test")
    png, svg = figure_render(figure)
    assert png.startswith(b"\x89PNG") and b"Why row 1 is predicted spam" in svg
    assert "spam" in text_alt_text(spam_explanation, sms_data.space)


# ---------------------------------------------------------------- a job end to end


@pytest.mark.django_db
def test_sms_job_explains_words_and_packs_them(sms, user, run_on_commit):
    with pytest.raises(ApplicationError, match="cannot learn from text") as error:
        job_create(owner=user, dataset=sms, classifiers=["cnn"], explainers=["lime"])
    assert error.value.extra["field"] == "classifiers"
    with pytest.raises(ApplicationError, match="cannot explain text") as error:
        job_create(owner=user, dataset=sms, classifiers=["naive_bayes"], explainers=["integrated_gradients"])
    assert error.value.extra["field"] == "explainers"
    with run_on_commit():
        job = job_create(owner=user, dataset=sms, classifiers=["naive_bayes"], explainers=["lime", "anchor", "shap"],
                         rows={"random": 2}, params={**FAST, "classifiers": {"naive_bayes": {"alpha": 0.1}}})
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    run = job.runs.get()
    assert run.metrics["accuracy"] > 0.9 and run.units_done == run.units_total
    assert Explanation.objects.filter(job=job).count() == 2 * 3
    lime = Explanation.objects.filter(job=job, explainer="lime").first()
    assert lime.data["words"] and all(isinstance(w, str) for w, _ in lime.data["words"])
    anchor = Explanation.objects.filter(job=job, explainer="anchor").first()
    assert {"rule", "precision", "coverage"} <= set(anchor.data)
    kinds = set(Plot.objects.filter(job=job, explanation__isnull=True).values_list("kind", flat=True))
    assert {"confusion_matrix", "lime_importance", "shap_importance"} <= kinds
    assert Plot.objects.filter(job=job, explanation__isnull=False).count() == 6
    with default_storage.open(job_zip_fresh(job=job), "rb") as handle:  # packed at the first download
        archive = zipfile.ZipFile(io.BytesIO(handle.read()))
    records = json.loads(archive.read("explanations.json"))
    assert {r["explainer"] for r in records} == {"lime", "anchor", "shap"}
    assert next(r for r in records if r["explainer"] == "lime")["data"]["label"] in ("ham", "spam")
    assert b"lime" in archive.read("explanations.csv")
