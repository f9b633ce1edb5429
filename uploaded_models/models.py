"""A classifier a user trained elsewhere and uploaded for one of their datasets, checked before it was saved."""

import uuid

from django.conf import settings
from django.db import models

KEY_PREFIX = "model:"  # a job names an uploaded model as "model:<id>" beside the registry's keys


def uploaded_model_path(instance: "UploadedModel", filename: str) -> str:
    # Generated names only, under the owner's prefix: nothing the user sends ends up in a path.
    return f"models/{instance.owner_id}/{uuid.uuid4().hex}.{instance.format}"


class UploadedModelFormat(models.TextChoices):
    ONNX = "onnx", "ONNX"
    SKOPS = "skops", "skops (scikit-learn)"
    SAFETENSORS = "safetensors", "safetensors weights"


class UploadedModelStatus(models.TextChoices):
    READY = "ready", "Ready"  # loaded, took the dataset's rows, predicted every class: only such files are kept


class UploadedModel(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="uploaded_models")
    dataset = models.ForeignKey("datasets.Dataset", on_delete=models.CASCADE, related_name="uploaded_models")
    name = models.CharField(max_length=200)
    format = models.CharField(max_length=16, choices=UploadedModelFormat.choices)
    architecture = models.CharField(max_length=32, blank=True)  # safetensors: which network the weights are for
    file = models.FileField(upload_to=uploaded_model_path, max_length=300)
    original_filename = models.CharField(max_length=255, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16, choices=UploadedModelStatus.choices, default=UploadedModelStatus.READY)
    accuracy = models.FloatField(null=True, blank=True)  # on the dataset's labelled rows, when it was uploaded
    n_rows_scored = models.PositiveIntegerField(default=0)
    class_labels = models.JSONField(default=list, blank=True)  # the model's own class names, in output order
    input_mapping = models.JSONField(default=dict, blank=True)  # {"by": "name"|"order"|"network", "columns": [...]}
    family = models.CharField(max_length=16, default="other")  # "tree" for a skops tree ensemble, "network", ...
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name

    @property
    def key(self) -> str:
        """How a job names it among its classifiers."""
        return f"{KEY_PREFIX}{self.pk}"
