"""Dataset services: upload to Parquet, the schema a user names, deletion."""

import pytest
from django.core.files.storage import default_storage
from django.http import Http404

from datasets.selectors import dataset_frame_load, dataset_get
from datasets.services import dataset_create, dataset_delete, dataset_schema_default, dataset_schema_set
from explainer_site.exceptions import ApplicationError
from tests.unit_fixtures import *  # noqa: F403
from tests.unit_fixtures import upload

pytestmark = pytest.mark.django_db


def test_upload_stores_clean_parquet_with_profile_and_hash(user):
    dataset = dataset_create(owner=user, file=upload("heart.csv"), name="")
    assert dataset.name == "heart" and dataset.n_rows == 303 and dataset.n_columns == 14
    assert dataset.data_file.name.endswith(".parquet") and "heart" not in dataset.data_file.name
    assert len(dataset.sha256) == 64
    frame = dataset_frame_load(dataset=dataset)
    assert frame.shape == (303, 14) and frame["ca"].isna().sum() == 4
    assert dataset.label_values["num"] == [["0", 164], ["1", 55], ["2", 36], ["3", 35], ["4", 13]]
    assert len(dataset.preview) == 20


def test_default_schema_guesses_label_row_name_and_categoricals(user):
    dataset = dataset_create(owner=user, file=upload("zoo.csv"))
    schema = dataset_schema_default(dataset=dataset)
    assert schema["label"] == "class_type"
    assert schema["row_name"] == "animal_name"
    assert "animal_name" not in schema["features"] and "class_type" not in schema["features"]


def test_schema_errors_name_the_field(zoo):
    with pytest.raises(ApplicationError) as error:
        dataset_schema_set(dataset=zoo, label="nope", features=["hair"])
    assert error.value.extra["field"] == "label"
    with pytest.raises(ApplicationError) as error:
        dataset_schema_set(dataset=zoo, label="class_type", features=[])
    assert error.value.extra["field"] == "features" and "at least one" in error.value.message
    with pytest.raises(ApplicationError) as error:
        dataset_schema_set(dataset=zoo, label="class_type", features=["hair"], class_names={"9": "Nine"})
    assert error.value.extra["field"] == "class_names"
    with pytest.raises(ApplicationError, match="same display name"):
        dataset_schema_set(dataset=zoo, label="class_type", features=["hair"], class_names={"1": "A", "2": "A"})


def test_schema_keeps_label_out_of_features_and_names_classes(heart):
    assert "num" not in heart.schema["features"]
    assert heart.schema["class_names"] == {"0": "No disease", "1": "1", "2": "2", "3": "3", "4": "4"}
    assert heart.schema["categorical"] == ["cp", "thal"]


def test_delete_removes_the_file_once_committed(zoo, user, django_capture_on_commit_callbacks):
    path = zoo.data_file.name
    assert default_storage.exists(path)
    with django_capture_on_commit_callbacks(execute=True):
        dataset_delete(dataset=zoo)
    assert not default_storage.exists(path)
    with pytest.raises(Http404):
        dataset_get(user=user, dataset_id=zoo.pk)


def test_an_id_like_column_is_refused_as_label(zoo):
    with pytest.raises(ApplicationError, match="almost every row") as error:
        dataset_schema_set(dataset=zoo, label="animal_name", features=["hair"])
    assert error.value.extra["field"] == "label"
