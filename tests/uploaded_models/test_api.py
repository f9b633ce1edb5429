"""Bring your own model through the API: each format that works, each refusal, and owners kept apart."""

from __future__ import annotations

import io
import pickle
import re

import joblib
import numpy as np
import pytest

from tests.unit_fixtures import *  # noqa: F403
from tests.uploaded_models.conftest import mlp_weights, model_file

pytestmark = pytest.mark.django_db


def post_model(api, dataset, content: bytes, filename: str, format: str, **extra):
    return api.post(f"/api/datasets/{dataset.pk}/models/", {"file": model_file(content, filename), "format": format, **extra},
                    format="multipart")


def app_probabilities(model):
    """What a job's explainers get from the uploaded model, on every row of the dataset."""
    from explanations.job_data import job_data_build
    from uploaded_models.job_classifiers import uploaded_model_job_load

    data = job_data_build(dataset=model.dataset, schema=model.dataset.schema, test_size=0.25, seed=0)
    loaded = uploaded_model_job_load(key=model.key, data=data, dataset=model.dataset)
    return loaded.predict_proba(data.X)


def test_an_onnx_logistic_regression_predicts_in_the_app_as_it_does_alone(api, adult, adult_frame, adult_columns, onnx_logistic):
    import onnxruntime

    from uploaded_models.models import UploadedModel

    response = post_model(api, adult, onnx_logistic, "scorecard.onnx", "onnx", name="Scorecard")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["key"] == f"model:{body['id']}" and body["name"] == "Scorecard" and body["status"] == "ready"
    assert body["class_labels"] == ["<=50K", ">50K"] and body["input_mapping"]["by"] == "name"
    assert 0.75 < body["accuracy"] <= 1.0 and body["n_rows_scored"] == 1200

    features, text, _ = adult_columns
    session = onnxruntime.InferenceSession(onnx_logistic, providers=["CPUExecutionProvider"])
    X = adult_frame[features].copy()
    X[text] = X[text].fillna("")
    feed = {re.sub(r"[^0-9A-Za-z_]", "_", c): X[[c]].to_numpy().astype(str if c in text else np.float32) for c in features}
    own = np.array([[row["<=50K"], row[">50K"]] for row in session.run(["output_probability"], feed)[0]])
    in_app = app_probabilities(UploadedModel.objects.get(pk=body["id"]))
    assert in_app.shape == (1200, 2)
    np.testing.assert_allclose(in_app, own, atol=1e-6)

    assert [m["id"] for m in api.get(f"/api/datasets/{adult.pk}/models/").json()] == [body["id"]]
    assert api.get(f"/api/models/{body['id']}/").json()["accuracy"] == body["accuracy"]


def test_a_skops_boosting_pipeline_predicts_in_the_app_as_it_does_alone(api, adult, adult_frame, adult_columns, skops_boosting):
    from uploaded_models.models import UploadedModel

    content, pipeline = skops_boosting
    response = post_model(api, adult, content, "boosting.skops", "skops")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["name"] == "boosting" and body["family"] == "tree" and body["input_mapping"]["by"] == "name"
    own = pipeline.predict_proba(adult_frame[adult_columns[0]])
    np.testing.assert_allclose(app_probabilities(UploadedModel.objects.get(pk=body["id"])), own, atol=1e-6)
    assert body["accuracy"] == pytest.approx(np.mean(pipeline.predict(adult_frame[adult_columns[0]]) == adult_frame["income"]))


def test_mlp_weights_in_safetensors_are_checked_against_the_architecture(api, adult):
    n_features = len(adult.schema["features"])
    fine = post_model(api, adult, mlp_weights(n_features, 16, 2), "net.safetensors", "safetensors", architecture="mlp",
                      n_classes=2)
    assert fine.status_code == 201, fine.json()
    assert fine.json()["family"] == "network" and fine.json()["input_mapping"]["by"] == "network"
    wide = post_model(api, adult, mlp_weights(n_features + 3, 16, 2), "net.safetensors", "safetensors", architecture="mlp",
                      n_classes=2)
    assert wide.status_code == 400
    assert "do not fit the app's MLP here: 0.weight is [16, 17] (expected [16, 14])" in wide.json()["error"]
    three = post_model(api, adult, mlp_weights(n_features, 16, 3), "net.safetensors", "safetensors", architecture="mlp",
                       n_classes=3)
    assert three.status_code == 400 and three.json()["field"] == "n_classes"
    assert "predicts 3 classes but “income” has 2" in three.json()["error"]
    unnamed = post_model(api, adult, mlp_weights(n_features, 16, 2), "net.safetensors", "safetensors")
    assert unnamed.status_code == 400 and unnamed.json()["field"] == "architecture"


# ---------------------------------------------------------------- refusals: nothing is saved


class NotAModel:
    """A class of the uploader's own: skops lists it as a type it cannot vouch for."""

    def __init__(self, clf):
        self.clf = clf

    def predict_proba(self, X):
        return self.clf.predict_proba(X)


def torchscript_bytes() -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(torch.nn.Linear(3, 2)), buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(("what", "filename", "format", "expected"), [
    ("pickle", "model.onnx", "onnx", "This is a Python pickle (or joblib) file; loading one runs code, so the app never does."),
    ("pickle", "model.skops", "skops", "This is a Python pickle (or joblib) file"),
    ("joblib", "model.skops", "skops", "This is a Python pickle (or joblib) file"),
    ("joblib_compressed", "model.onnx", "onnx", "This is a compressed file such as a joblib dump"),
    ("torchscript", "model.onnx", "onnx", "This is a TorchScript or torch.save file; loading one runs code"),
    ("torchscript", "model.skops", "skops", "This is a TorchScript or torch.save file"),
    ("text", "model.safetensors", "safetensors", "This is not a safetensors file."),
])
def test_files_that_run_code_or_are_not_the_format_are_refused(api, adult, adult_frame, adult_columns, media_files,
                                                               what, filename, format, expected):
    from sklearn.linear_model import LogisticRegression

    from uploaded_models.models import UploadedModel

    numbers = adult_columns[2]
    model = LogisticRegression(max_iter=200).fit(adult_frame[numbers], adult_frame["income"])
    if what == "pickle":
        content = pickle.dumps(model)
    elif what.startswith("joblib"):
        buffer = io.BytesIO()
        joblib.dump(model, buffer, compress=3 if what == "joblib_compressed" else 0)
        content = buffer.getvalue()
    elif what == "torchscript":
        content = torchscript_bytes()
    else:
        content = b"age,income\n39,<=50K\n"
    extra = {"architecture": "mlp", "n_classes": 2} if format == "safetensors" else {}
    response = post_model(api, adult, content, filename, format, **extra)
    assert response.status_code == 400, response.json()
    assert expected in response.json()["error"]
    assert "skl2onnx.to_onnx(model, X[:1])" in response.json()["error"] or what == "text"
    assert UploadedModel.objects.count() == 0 and media_files() == []


def test_a_skops_file_with_a_type_nobody_trusts_is_refused_with_the_list(api, adult, adult_frame, adult_columns, media_files):
    import skops.io
    from sklearn.linear_model import LogisticRegression

    from uploaded_models.models import UploadedModel

    numbers = adult_columns[2]
    content = skops.io.dumps(NotAModel(LogisticRegression(max_iter=200).fit(adult_frame[numbers], adult_frame["income"])))
    response = post_model(api, adult, content, "mine.skops", "skops")
    assert response.status_code == 400
    assert response.json()["error"].startswith("This skops file contains types the app does not trust, so it was not "
                                               "loaded: tests.uploaded_models.test_api.NotAModel.")
    assert UploadedModel.objects.count() == 0 and media_files() == []


def shifted(X):
    """A function of the uploader's own, which a FunctionTransformer would call."""
    return X + 1


def test_a_function_of_the_uploaders_own_inside_a_skops_pipeline_is_not_trusted(api, adult, adult_frame, adult_columns):
    import skops.io
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    numbers = adult_columns[2]
    pipeline = make_pipeline(FunctionTransformer(shifted), LogisticRegression(max_iter=200))
    content = skops.io.dumps(pipeline.fit(adult_frame[numbers], adult_frame["income"]))
    response = post_model(api, adult, content, "shift.skops", "skops")
    assert response.status_code == 400
    assert "types the app does not trust, so it was not loaded: tests.uploaded_models.test_api.shifted" in response.json()["error"]


def test_an_onnx_model_of_other_columns_names_them(api, adult, adult_frame):
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    X = adult_frame[["age", "hours-per-week"]].to_numpy(np.float32)
    X = np.hstack([X, X])  # four numbers in one input: this dataset has 14 features
    content = to_onnx(LogisticRegression().fit(X, adult_frame["income"]), X[:1]).SerializeToString()
    response = post_model(api, adult, content, "other.onnx", "onnx")
    assert response.status_code == 400
    assert response.json()["error"].startswith("The model's input X matches no feature column of this dataset (age, ")


def test_an_onnx_model_of_other_classes_is_refused(api, heart):
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, len(heart.schema["features"]))).astype(np.float32)
    y = np.array(["cat", "dog", "eel"] * 20)
    content = to_onnx(LogisticRegression().fit(X, y), X[:1]).SerializeToString()
    response = post_model(api, heart, content, "pets.onnx", "onnx")
    assert response.status_code == 400
    assert "The model predicts 'cat', 'dog', 'eel', which are not among the label's values" in response.json()["error"]


def test_hostile_files_get_a_sentence_never_a_server_error(api, adult, adult_frame, adult_columns, onnx_logistic, skops_boosting,
                                                          monkeypatch):
    import json
    import struct

    from explanations.ml import uploaded

    truncated = post_model(api, adult, onnx_logistic[: len(onnx_logistic) // 2], "cut.onnx", "onnx")
    assert truncated.status_code == 400 and truncated.json()["error"].startswith("onnxruntime cannot read this ONNX file")
    cut_skops = post_model(api, adult, skops_boosting[0][:5000], "cut.skops", "skops")
    assert cut_skops.status_code == 400 and "damaged or cut off" in cut_skops.json()["error"]

    header = json.dumps({"0.weight": {"dtype": "F32", "shape": [100000, 100000], "data_offsets": [0, 40_000_000_000]}}).encode()
    huge = struct.pack("<Q", len(header)) + header + b"\0" * 64
    declared = post_model(api, adult, huge, "huge.safetensors", "safetensors", architecture="mlp", n_classes=2)
    assert declared.status_code == 400 and "declares 40,000,000,000 bytes that the file does not hold" in declared.json()["error"]

    monkeypatch.setattr(uploaded, "SKOPS_UNPACKED_MAX", 100_000)  # a zip bomb is a file that unpacks past the limit
    bomb = post_model(api, adult, skops_boosting[0], "bomb.skops", "skops")
    assert bomb.status_code == 400 and "unpacks to" in bomb.json()["error"]


def test_a_skops_model_with_nan_probabilities_is_refused(api, adult, adult_frame, adult_columns):
    import skops.io
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=50).fit(adult_frame[adult_columns[2]], adult_frame["income"])  # 6 of the columns
    model.coef_[:] = np.nan
    response = post_model(api, adult, skops.io.dumps(model), "nan.skops", "skops")
    assert response.status_code == 400
    assert response.json()["error"] == "The model returned NaN or infinite probabilities on the dataset's rows."


def test_too_big_and_too_many_are_refused(api, adult, onnx_logistic, settings):
    settings.EXPLAINER_MAX_UPLOAD_MB = 0
    big = post_model(api, adult, onnx_logistic, "m.onnx", "onnx")
    assert big.status_code == 413 and big.json()["error"] == "The file is larger than 0 MB, the limit of this server."
    settings.EXPLAINER_MAX_UPLOAD_MB = 10
    settings.EXPLAINER_MAX_UPLOADED_MODELS_PER_USER = 1
    assert post_model(api, adult, onnx_logistic, "m.onnx", "onnx").status_code == 201
    again = post_model(api, adult, onnx_logistic, "m.onnx", "onnx")
    assert again.status_code == 400 and "You have 1 uploaded models, the most one account may keep" in again.json()["error"]


def test_an_unknown_format_and_a_dataset_without_columns_named(api, adult, user, onnx_logistic):
    from datasets.services import dataset_create
    from tests.uploaded_models.conftest import adult_head

    unknown = post_model(api, adult, onnx_logistic, "m.bin", "pickle")
    assert unknown.status_code == 400
    from django.core.files.uploadedfile import SimpleUploadedFile

    raw = dataset_create(owner=user, file=SimpleUploadedFile("a.csv", adult_head()), name="raw")
    unnamed = post_model(api, raw, onnx_logistic, "m.onnx", "onnx")
    assert unnamed.status_code == 400 and unnamed.json()["field"] == "dataset"


def test_other_users_never_see_or_touch_a_model(api, other_api, adult, onnx_logistic, media_files):
    body = post_model(api, adult, onnx_logistic, "m.onnx", "onnx").json()
    assert other_api.get(f"/api/models/{body['id']}/").status_code == 404
    assert other_api.delete(f"/api/models/{body['id']}/").status_code == 404
    assert other_api.get(f"/api/datasets/{adult.pk}/models/").status_code == 404
    assert post_model(other_api, adult, onnx_logistic, "m.onnx", "onnx").status_code == 404
    assert len(media_files()) == 1


def test_deleting_a_model_removes_its_file(api, adult, onnx_logistic, media_files, django_capture_on_commit_callbacks):
    body = post_model(api, adult, onnx_logistic, "m.onnx", "onnx").json()
    assert media_files() and media_files()[0].startswith(f"models/{adult.owner_id}/")
    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"/api/models/{body['id']}/").status_code == 204
    assert media_files() == [] and api.get(f"/api/models/{body['id']}/").status_code == 404


def test_the_openapi_schema_documents_the_model_endpoints(api):
    schema = api.get("/api/schema/?format=json").json()
    assert {"get", "post"} <= set(schema["paths"]["/api/datasets/{dataset_id}/models/"])
    assert {"get", "delete"} <= set(schema["paths"]["/api/models/{model_id}/"])
    content = schema["paths"]["/api/datasets/{dataset_id}/models/"]["post"]["requestBody"]["content"]
    reference = content["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert {"file", "format", "name", "architecture", "n_classes"} <= set(schema["components"]["schemas"][reference]["properties"])
