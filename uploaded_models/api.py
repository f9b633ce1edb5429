"""JSON API for uploaded models: the same services as the dataset page's form."""

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from datasets.selectors import dataset_get
from explainer_site.exceptions import ApplicationError

from .models import UploadedModel
from .selectors import uploaded_model_get, uploaded_model_list
from .services import uploaded_model_create, uploaded_model_delete


class UploadedModelOutput(serializers.ModelSerializer):
    key = serializers.CharField(read_only=True, help_text="How a job names it in `classifiers`, e.g. \"model:12\".")
    dataset = serializers.IntegerField(source="dataset_id", read_only=True)

    class Meta:
        model = UploadedModel
        fields = ["id", "key", "dataset", "name", "format", "architecture", "original_filename", "size_bytes", "sha256",
                  "status", "accuracy", "n_rows_scored", "class_labels", "input_mapping", "family", "error", "created_at"]


class UploadedModelInput(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True)
    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    format = serializers.ChoiceField(choices=["onnx", "skops", "safetensors"],
                                     help_text="onnx, skops (scikit-learn) or safetensors (weights of `architecture`)")
    architecture = serializers.CharField(required=False, allow_blank=True, max_length=32,
                                         help_text="safetensors only: cnn, resnet18, vgg11, vgg16 or mobilenet_v3_small "
                                                   "(images), mlp (tables)")
    n_classes = serializers.IntegerField(required=False, min_value=2, max_value=10_000,
                                         help_text="safetensors only: the size of the network's last layer")


class UploadedModelListApi(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(responses=UploadedModelOutput(many=True))
    def get(self, request, dataset_id: int):
        dataset = dataset_get(user=request.user, dataset_id=dataset_id)
        return Response(UploadedModelOutput(uploaded_model_list(user=request.user, dataset_id=dataset.pk), many=True).data)

    @extend_schema(request=UploadedModelInput, responses={201: UploadedModelOutput})
    def post(self, request, dataset_id: int):
        dataset = dataset_get(user=request.user, dataset_id=dataset_id)
        files = request.FILES  # parses the upload, which is what sets ``upload_too_large``
        if getattr(request._request, "upload_too_large", False):
            raise ApplicationError(f"The file is larger than {settings.EXPLAINER_MAX_UPLOAD_MB} MB, the limit of this "
                                   "server.", {"field": "file"}, status=413)
        if "file" not in files:
            raise ApplicationError("Send the model as the multipart field “file”.", {"field": "file"})
        serializer = UploadedModelInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        model = uploaded_model_create(owner=request.user, dataset=dataset, file=values["file"], name=values.get("name", ""),
                                      format=values["format"], architecture=values.get("architecture", ""),
                                      n_classes=values.get("n_classes"))
        return Response(UploadedModelOutput(model).data, status=status.HTTP_201_CREATED)


class UploadedModelDetailApi(APIView):
    @extend_schema(responses=UploadedModelOutput)
    def get(self, request, model_id: int):
        return Response(UploadedModelOutput(uploaded_model_get(user=request.user, model_id=model_id)).data)

    def delete(self, request, model_id: int):
        uploaded_model_delete(model=uploaded_model_get(user=request.user, model_id=model_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
