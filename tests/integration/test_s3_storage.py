"""Workers on several machines share files through S3-compatible storage, not a disk (README, "Production").

The production settings with ``EXPLAINER_S3_BUCKET`` set, against moto's S3 server (an S3-protocol server from
PyPI, run here on loopback), two workers and gunicorn: every file the job writes (the upload, its Parquet, the
fitted models, plots, the ZIP) lands in the bucket and nothing in the media folder, and the pages and the API
read them back from there.
"""

from __future__ import annotations

import io
import socket
import zipfile
from collections.abc import Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.stack import AppStack, WorkerSpec

pytestmark = pytest.mark.integration

BUCKET = "explainer-media"
KEYS = {"AWS_ACCESS_KEY_ID": "explainer-test", "AWS_SECRET_ACCESS_KEY": "explainer-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3() -> Iterator[tuple[str, object]]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id=KEYS["AWS_ACCESS_KEY_ID"], aws_secret_access_key=KEYS["AWS_SECRET_ACCESS_KEY"])
    client.create_bucket(Bucket=BUCKET)
    try:
        yield endpoint, client
    finally:
        server.stop()


@pytest.fixture(scope="module")
def s3_stack(s3) -> Iterator[AppStack]:
    endpoint, _ = s3
    stack = AppStack(name="s3", settings_module="explainer_site.settings.production",
                     workers=[WorkerSpec("worker", queues="celery,gpu,interactive", concurrency=1),
                              WorkerSpec("worker-gpu", queues="celery,gpu,interactive", concurrency=1)],
                     extra_env={**KEYS, "EXPLAINER_S3_BUCKET": BUCKET, "EXPLAINER_S3_ENDPOINT_URL": endpoint,
                                "EXPLAINER_S3_REGION": "us-east-1", "DJANGO_SECURE_SSL_REDIRECT": "false",
                                "DJANGO_SECURE_COOKIES": "false", "DJANGO_SECURE_HSTS_SECONDS": "0"})
    with stack:
        yield stack


def bucket_keys(client) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def test_a_job_on_two_workers_keeps_every_file_in_the_bucket(s3, s3_stack, datasets_dir):
    _, client = s3
    api = s3_stack.api(s3_stack.user_create("s3-alice", "s3-alice-pass-2026"))
    dataset = api.upload("/api/datasets/", datasets_dir / "heart.csv", name="Heart on S3")
    assert dataset["n_rows"] == 303
    api.json("PUT", f"/api/datasets/{dataset['id']}/schema/", {"label": "num", "categorical": ["cp", "thal"]})
    created = api.json("POST", "/api/jobs/", {
        "dataset": dataset["id"], "classifiers": ["random_forest", "logistic_regression"],
        "explainers": ["lime", "shap"], "rows": {"ids": [2, 40]},
        "params": {"classifiers": {"random_forest": {"n_estimators": 30}}, "lime": {"num_samples": 300},
                   "shap": {"nsamples": 100}}}, expect=201)
    job = api.job_wait(created["id"], timeout=300)
    assert job["status"] == "succeeded", job
    assert len(api.json("GET", f"/api/jobs/{job['id']}/explanations/")) == 2 * 2 * 2
    assert len({b["worker"] for b in job["batches"] if b["worker"]}) == 2, job["batches"]  # both workers took steps

    _, body = api.get_bytes(f"/api/jobs/{job['id']}/download/")
    names = zipfile.ZipFile(io.BytesIO(body)).namelist()
    assert any(n.endswith(".png") for n in names) and any(n.endswith(".svg") for n in names)

    keys = bucket_keys(client)
    assert any(k.endswith(".parquet") for k in keys), keys  # the ingested table
    assert any(k.endswith(".png") for k in keys) and any(k.endswith(".zip") for k in keys), keys
    media = s3_stack.tmp / "media"
    local = [p for p in media.rglob("*") if p.is_file()] if media.exists() else []
    assert local == [], local  # no file went to a disk the other machine could not see

    # Deleting the job deletes its files in the bucket as well.
    job_keys = [k for k in keys if f"jobs/{job['id']}/" in k]
    assert job_keys, keys
    api.json("DELETE", f"/api/jobs/{job['id']}/", expect=204)
    left = set(bucket_keys(client))
    assert not left & set(job_keys), sorted(left & set(job_keys))
