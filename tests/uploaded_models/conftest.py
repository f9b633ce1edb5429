"""Models trained outside the app on real tables, saved in the formats a user uploads (and in those refused)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.unit_fixtures import SHARED

ADULT_ROWS = 1200


def adult_head() -> bytes:
    """The first rows of Adult as the user's CSV (spaces after commas, "?" for missing, as in the file)."""
    lines = (SHARED / "adult.csv").read_text().splitlines()[: ADULT_ROWS + 1]
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(scope="session")
def adult_frame() -> pd.DataFrame:
    """The same rows read as a data scientist would, outside the app."""
    return pd.read_csv(io.BytesIO(adult_head()), skipinitialspace=True, na_values="?")


@pytest.fixture(scope="session")
def adult_columns(adult_frame):
    features = [c for c in adult_frame.columns if c != "income"]
    text = [c for c in features if not pd.api.types.is_numeric_dtype(adult_frame[c])]
    return features, text, [c for c in features if c not in text]


@pytest.fixture
def adult(user, adult_columns):
    from datasets.services import dataset_create, dataset_schema_set

    features, text, _ = adult_columns
    dataset = dataset_create(owner=user, file=SimpleUploadedFile("adult_head.csv", adult_head(), content_type="text/csv"),
                             name="Adult")
    return dataset_schema_set(dataset=dataset, label="income", features=features, categorical=text, class_names={})


@pytest.fixture(scope="session")
def onnx_logistic(adult_frame, adult_columns):
    """A logistic regression pipeline exported by skl2onnx: one named input per column, ZipMap class names."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    features, text, numbers = adult_columns
    X = adult_frame[features].copy()
    X[text] = X[text].fillna("")
    prep = ColumnTransformer([("text", OneHotEncoder(handle_unknown="ignore"), text), ("numbers", StandardScaler(), numbers)])
    model = Pipeline([("prep", prep), ("model", LogisticRegression(max_iter=1000))]).fit(X, adult_frame["income"])
    types = [(c, StringTensorType([None, 1]) if c in text else FloatTensorType([None, 1])) for c in features]
    return to_onnx(model, initial_types=types).SerializeToString()


def skops_pipeline(adult_frame, adult_columns, model) -> tuple[bytes, object]:
    import skops.io
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    features, text, numbers = adult_columns
    categories = Pipeline([("fill", SimpleImputer(strategy="most_frequent")), ("one_hot", OneHotEncoder(handle_unknown="ignore"))])
    prep = ColumnTransformer([("text", categories, text), ("numbers", SimpleImputer(strategy="median"), numbers)])
    pipeline = Pipeline([("prep", prep), ("model", model)]).fit(adult_frame[features], adult_frame["income"])
    return skops.io.dumps(pipeline), pipeline


@pytest.fixture(scope="session")
def skops_boosting(adult_frame, adult_columns):
    from sklearn.ensemble import GradientBoostingClassifier

    return skops_pipeline(adult_frame, adult_columns, GradientBoostingClassifier(n_estimators=30, random_state=0))


def model_file(content: bytes, name: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


@pytest.fixture
def media_files(settings):
    """The model files this test wrote, to show a refused upload left nothing behind."""
    from pathlib import Path

    root = Path(settings.MEDIA_ROOT)

    def model_files() -> set[str]:
        return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.parts[len(root.parts)] == "models"}

    before = model_files()  # the test media folder lives for the session: count only this test's files
    return lambda: sorted(model_files() - before)


def mlp_weights(n_features: int, hidden: int, n_classes: int) -> bytes:
    import torch
    from safetensors.torch import save

    from explanations.ml.torch_mlp import _module_build

    torch.manual_seed(0)
    return save({k: v.contiguous() for k, v in _module_build(n_features, hidden, n_classes).state_dict().items()})


__all__ = ["adult_frame", "adult_columns", "adult", "onnx_logistic", "skops_boosting", "skops_pipeline", "model_file",
           "media_files", "mlp_weights", "np"]
