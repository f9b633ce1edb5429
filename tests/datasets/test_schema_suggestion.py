"""Issue 17 item 6: the schema's first guess picks the obvious outcome and leaves ids, codes and mostly empty
columns unticked, saying why; the API shows the same suggestion."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from datasets.schema_guess import id_like, schema_guess
from datasets.services import dataset_create, dataset_schema_default, dataset_schema_set
from tests.passengers import passengers_csv
from tests.unit_fixtures import *  # noqa: F403
from tests.unit_fixtures import upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def passengers(user):
    return dataset_create(owner=user, file=SimpleUploadedFile("titanic.csv", passengers_csv(), content_type="text/csv"),
                          name="Passengers")


def test_the_passenger_list_gets_the_obvious_label_and_no_id_code_or_empty_column(passengers, api):
    body = api.get(f"/api/datasets/{passengers.pk}/").json()
    suggestion = body["schema_suggestion"]
    assert suggestion["label"] == "Survived" and suggestion["row_name"] == "Name"
    assert set(suggestion["features"]) == {"Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"}
    assert set(suggestion["categorical"]) == {"Sex", "Embarked"}
    reasons = suggestion["reasons"]
    assert "like an id" in reasons["PassengerId"] and "code" in reasons["Ticket"] and "missing" in reasons["Cabin"]
    assert set(reasons) >= {"PassengerId", "Ticket", "Cabin"} and not set(reasons) & set(suggestion["features"])
    # what the form pre-fills is a schema the service takes as it is
    saved = dataset_schema_set(dataset=passengers, **dataset_schema_default(dataset=passengers))
    assert saved.schema["label"] == "Survived" and "PassengerId" not in saved.schema["features"]


def test_the_shared_datasets_keep_their_labels(user):
    for name, label in (("adult.csv", "income"), ("heart.csv", "num"), ("zoo.csv", "class_type")):
        dataset = dataset_create(owner=user, file=upload(name), name=name)
        assert dataset_schema_default(dataset=dataset)["label"] == label, name


def test_the_schema_page_says_why_a_column_is_unticked(passengers, client, user):
    client.force_login(user)
    html = client.get(f"/datasets/{passengers.pk}/schema/").content.decode()
    assert 'data-column="Ticket" data-reason=' in html and "a code (like a ticket number)" in html
    assert 'value="Survived" selected' in html


@pytest.mark.parametrize("name", ["id", "PassengerId", "customer_id", "Row No", "record", "ID-2", "userID"])
def test_id_names(name):
    assert id_like(name)


@pytest.mark.parametrize("name", ["Age", "Fare", "valid", "width", "Idle", "android", "Pclass", "income"])
def test_not_id_names(name):
    assert not id_like(name)


def test_a_numeric_column_unique_per_row_is_a_feature_unless_named_like_an_id():
    columns = [{"name": "amount", "dtype": "numeric", "n_unique": 100, "n_missing": 0, "missing_pct": 0.0},
               {"name": "row_id", "dtype": "numeric", "n_unique": 100, "n_missing": 0, "missing_pct": 0.0},
               {"name": "outcome", "dtype": "categorical", "n_unique": 2, "n_missing": 0, "missing_pct": 0.0}]
    guess = schema_guess(columns, {"outcome": [["a", 50], ["b", 50]]}, 100)
    assert guess["label"] == "outcome" and guess["features"] == ["amount"] and "row_id" in guess["reasons"]
