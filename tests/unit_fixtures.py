"""Fixtures for in-process tests of services, pages and the API (import them with ``from tests.unit_fixtures import *``)."""

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"

__all__ = ["SHARED", "user", "other_user", "api", "other_api", "zoo", "heart", "upload", "run_on_commit", "finished"]


def upload(name: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, (SHARED / name).read_bytes(), content_type="text/csv")


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("alice", password="a-long-password-1")


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user("mallory", password="a-long-password-2")


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


@pytest.fixture
def api(user) -> APIClient:
    return client_for(user)


@pytest.fixture
def other_api(other_user) -> APIClient:
    return client_for(other_user)


@pytest.fixture
def zoo(user):
    from datasets.services import dataset_create, dataset_schema_set

    dataset = dataset_create(owner=user, file=upload("zoo.csv"), name="Zoo")
    features = [c for c in dataset.column_names if c not in ("animal_name", "class_type")]
    names = {"1": "Mammal", "2": "Bird", "3": "Reptile", "4": "Fish", "5": "Amphibian", "6": "Bug", "7": "Invertebrate"}
    return dataset_schema_set(dataset=dataset, label="class_type", features=features, categorical=["legs"],
                              class_names=names, row_name="animal_name")


@pytest.fixture
def heart(user):
    from datasets.services import dataset_create, dataset_schema_set

    dataset = dataset_create(owner=user, file=upload("heart.csv"), name="Heart")
    features = [c for c in dataset.column_names if c != "num"]
    return dataset_schema_set(dataset=dataset, label="num", features=features, categorical=["cp", "thal"],
                              class_names={"0": "No disease"})


@pytest.fixture
def run_on_commit(django_capture_on_commit_callbacks):
    """Run ``transaction.on_commit`` callbacks (the task enqueue) inside the test transaction; tasks run eagerly."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def finished(zoo, user, run_on_commit):
    """A small succeeded job: a decision tree explained by LIME on Zoo rows 0 and 1."""
    from explanations.services.job_create import job_create

    with run_on_commit():
        job = job_create(owner=user, dataset=zoo, classifiers=["decision_tree"], explainers=["lime"],
                         rows={"ids": [0, 1]}, params={"lime": {"num_samples": 300}})
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    from explanations.exports import job_zip_fresh

    job_zip_fresh(job=job)  # packed as the first download would (a job's ZIP is made when it is downloaded)
    return job
