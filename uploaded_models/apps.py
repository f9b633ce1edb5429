from django.apps import AppConfig
from django.db.models.signals import post_delete


class UploadedModelsConfig(AppConfig):
    """Classifiers users trained elsewhere and bring to explain (ONNX, skops, safetensors)."""

    name = "uploaded_models"
    verbose_name = "Uploaded models"

    def ready(self) -> None:
        from uploaded_models.models import UploadedModel
        from uploaded_models.services import uploaded_model_file_delete

        post_delete.connect(uploaded_model_file_delete, sender=UploadedModel,
                            dispatch_uid="uploaded_models.uploaded_model_file_delete")
