"""``{% dataset_models dataset %}``: the "Bring your own model" section of a dataset's page."""

from django import template
from django.conf import settings

from explanations.ml.modalities import schema_modality
from explanations.ml.uploaded import ARCHITECTURES, FORMATS
from uploaded_models.selectors import uploaded_model_list

register = template.Library()


@register.inclusion_tag("uploaded_models/_dataset_models.html", takes_context=True)
def dataset_models(context: template.Context, dataset) -> dict:
    """The viewer's models for ``dataset`` and the upload form (scoped to the request's user)."""
    return {"dataset": dataset, "models": uploaded_model_list(user=context["request"].user, dataset_id=dataset.pk),
            "formats": FORMATS, "architectures": ARCHITECTURES, "modality": schema_modality(dataset.schema),
            "max_upload_mb": settings.EXPLAINER_MAX_UPLOAD_MB, "csrf_token": context.get("csrf_token")}
