"""A user's uploaded table: the cleaned data (Parquet, server-written), its profile and the schema they named."""

import uuid

from django.conf import settings
from django.db import models


def dataset_upload_path(instance: "Dataset", filename: str) -> str:
    # Generated names only: nothing the user sends ends up in a path.
    return f"datasets/{instance.owner_id}/{uuid.uuid4().hex}.parquet"


class DatasetStatus(models.TextChoices):
    READY = "ready", "Ready"
    PROCESSING = "processing", "Reading the file"
    FAILED = "failed", "Could not be read"


def raw_upload_path(instance: "Dataset", filename: str) -> str:
    return f"uploads/{instance.owner_id}/{uuid.uuid4().hex}.upload"


class Dataset(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=200)
    original_filename = models.CharField(max_length=255, blank=True)
    data_file = models.FileField(upload_to=dataset_upload_path, max_length=300, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)  # known once the file has been read
    size_bytes = models.BigIntegerField(default=0)
    n_rows = models.PositiveIntegerField(default=0)
    n_columns = models.PositiveIntegerField(default=0)
    # Big uploads are read by a worker: the raw file waits under a generated name until then, then is deleted.
    status = models.CharField(max_length=16, choices=DatasetStatus.choices, default=DatasetStatus.READY)
    error = models.TextField(blank=True)
    raw_file = models.FileField(upload_to=raw_upload_path, max_length=300, blank=True)
    columns = models.JSONField(default=list, blank=True)  # profile: [{name, dtype, n_missing, missing_pct, n_unique, examples}]
    preview = models.JSONField(default=list, blank=True)  # first rows as text
    cleaning_notes = models.JSONField(default=list, blank=True)
    label_values = models.JSONField(default=dict, blank=True)  # column -> [[value, count], ...] for low-cardinality columns
    schema = models.JSONField(null=True, blank=True)  # {label, features, categorical, class_names, row_name}
    is_demo = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name

    @property
    def column_names(self) -> list[str]:
        return [c["name"] for c in self.columns]

    @property
    def is_ready(self) -> bool:
        return self.status == DatasetStatus.READY

    @property
    def has_schema(self) -> bool:
        return bool(self.schema)
