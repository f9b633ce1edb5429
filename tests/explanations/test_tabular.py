from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from explanations.ml.tabular import MISSING, category_text, frame_encode, labels_encode, space_build


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [30.0, np.nan, 50.0, 40.0],
            "cp": [4.0, 1.0, 10.0, np.nan],  # numeric, declared categorical
            "workclass": ["Private", "State-gov", np.nan, "Private"],
            "empty": [np.nan] * 4,
        }
    )


@pytest.fixture
def space(frame: pd.DataFrame):
    return space_build(frame, features=["age", "cp", "workclass", "empty"], categorical=["cp", "workclass"],
                       class_names=["no", "yes"])


def test_space_sorts_categories_and_appends_missing(space) -> None:
    assert space.categorical == [1, 2]
    assert space.categories[1] == ["1", "4", "10", MISSING]  # numeric order, whole floats without ".0"
    assert space.categories[2] == ["Private", "State-gov", MISSING]
    assert space.medians == {0: 40.0, 3: 0.0}  # an all-missing column gets 0.0
    assert space.class_names == ["no", "yes"]


def test_encode_codes_categories_and_fills_medians(space, frame: pd.DataFrame) -> None:
    X = frame_encode(space, frame)
    assert X.dtype == np.float64 and X.shape == (4, 4)
    np.testing.assert_array_equal(X[:, 0], [30.0, 40.0, 50.0, 40.0])
    np.testing.assert_array_equal(X[:, 1], [1, 0, 2, 3])  # missing -> "(missing)" code
    np.testing.assert_array_equal(X[:, 2], [0, 1, 2, 0])
    np.testing.assert_array_equal(X[:, 3], [0.0] * 4)


def test_encode_maps_unseen_values_to_missing(space) -> None:
    new = pd.DataFrame({"age": ["35", "n/a"], "cp": [7.0, 4], "workclass": ["Never-worked", "Private"], "empty": [1.0, None]})
    X = frame_encode(space, new)
    np.testing.assert_array_equal(X[:, 0], [35.0, 40.0])
    np.testing.assert_array_equal(X[:, 1], [3, 1])  # unseen 7 -> missing; int 4 matches "4"
    np.testing.assert_array_equal(X[:, 2], [2, 0])
    assert space.value_text(1, X[0, 1]) == MISSING and space.value_text(2, X[1, 2]) == "Private"


def test_encode_reports_absent_columns(space) -> None:
    with pytest.raises(ValueError, match="workclass"):
        frame_encode(space, pd.DataFrame({"age": [1.0], "cp": [1.0], "empty": [1.0]}))


def test_space_rejects_unknown_columns(frame: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="nope"):
        space_build(frame, features=["age", "nope"], categorical=[], class_names=["a", "b"])


def test_category_text_and_labels() -> None:
    assert [category_text(v) for v in (1.0, 2.5, 3, "x", np.float64(7.0))] == ["1", "2.5", "3", "x", "7"]
    codes = labels_encode(pd.Series([" >50K", "<=50K", "other", np.nan]), ["<=50K", " >50K"])
    np.testing.assert_array_equal(codes, [1, 0, -1, -1])
    np.testing.assert_array_equal(labels_encode(pd.Series([0.0, 4.0, 2.0]), [0, 1, 2, 3, 4]), [0, 4, 2])
