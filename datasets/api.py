"""JSON API for datasets: the same services as the pages."""

from django.conf import settings
from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from explainer_site.exceptions import ApplicationError
from explainer_site.parsers import StrictJSONParser

from .models import Dataset
from .selectors import dataset_get, dataset_list
from .services import dataset_create, dataset_delete, dataset_schema_set, dataset_schema_suggestion


class DatasetOutput(serializers.ModelSerializer):
    schema_suggestion = serializers.SerializerMethodField(
        help_text="What the schema form pre-fills: {label, features, categorical, row_name, reasons: {column: "
                  "sentence}} (why a column was left out); null until the file has been read.")

    class Meta:
        model = Dataset
        fields = ["id", "name", "original_filename", "status", "error", "n_rows", "n_columns", "columns",
                  "cleaning_notes", "schema", "sha256", "created_at", "schema_suggestion"]

    def get_schema_suggestion(self, dataset: Dataset) -> dict | None:
        if not dataset.is_ready or not dataset.columns:
            return None
        suggestion = dataset_schema_suggestion(dataset=dataset)
        return {key: suggestion.get(key) for key in ("label", "features", "categorical", "row_name", "reasons")}


class DatasetUploadInput(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True)  # ingest says "“x.csv” is empty" with what to do
    name = serializers.CharField(required=False, allow_blank=True, max_length=200)


class SchemaInput(serializers.Serializer):
    label = serializers.CharField()
    features = serializers.ListField(child=serializers.CharField(), required=False)
    categorical = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    class_names = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False, default=dict)
    row_name = serializers.CharField(required=False, allow_blank=True, allow_null=True, default="")
    text = serializers.ListField(child=serializers.CharField(), required=False, default=list,
                                 help_text="[column]: a text dataset read from this free-text column")
    image_shape = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False, default=list,
                                        min_length=0, max_length=3,
                                        help_text="[height, width] or [height, width, channels]: the feature columns are pixels")


class DatasetListApi(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(responses=DatasetOutput(many=True))
    def get(self, request):
        return Response(DatasetOutput(dataset_list(user=request.user), many=True).data)

    @extend_schema(request=DatasetUploadInput, responses={201: DatasetOutput})
    def post(self, request):
        files = request.FILES  # parses the upload, which is what sets ``upload_too_large``
        if getattr(request._request, "upload_too_large", False):
            raise ApplicationError(
                f"The file is larger than {settings.EXPLAINER_MAX_UPLOAD_MB} MB, the limit of this server. "
                "Upload a smaller file or a sample of your data.", {"field": "file"}, status=413)
        if "file" not in files:
            raise ApplicationError("Send the CSV as the multipart field “file”.", {"field": "file"})
        serializer = DatasetUploadInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        dataset = dataset_create(owner=request.user, file=serializer.validated_data["file"],
                                 name=serializer.validated_data.get("name", ""))
        return Response(DatasetOutput(dataset).data, status=status.HTTP_201_CREATED)


class DatasetDetailApi(APIView):
    @extend_schema(responses=DatasetOutput)
    def get(self, request, dataset_id: int):
        return Response(DatasetOutput(dataset_get(user=request.user, dataset_id=dataset_id)).data)

    def delete(self, request, dataset_id: int):
        dataset_delete(dataset=dataset_get(user=request.user, dataset_id=dataset_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class DatasetSchemaApi(APIView):
    parser_classes = [StrictJSONParser]

    @extend_schema(request=SchemaInput, responses=DatasetOutput)
    def put(self, request, dataset_id: int):
        dataset = dataset_get(user=request.user, dataset_id=dataset_id)
        serializer = SchemaInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        features = values.get("features")
        if features is None:
            features = [c for c in dataset.column_names if c not in (values["label"], values.get("row_name"))]
        with transaction.atomic():
            dataset = dataset_schema_set(dataset=dataset, label=values["label"], features=features,
                                         categorical=values["categorical"], class_names=values["class_names"],
                                         row_name=values.get("row_name") or "", text=values["text"],
                                         image_shape=values["image_shape"])
        return Response(DatasetOutput(dataset).data)
