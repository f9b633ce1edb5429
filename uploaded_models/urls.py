from django.urls import path

from . import views

app_name = "uploaded_models"
urlpatterns = [
    path("datasets/<int:dataset_id>/models/", views.uploaded_model_upload, name="upload"),
    path("models/<int:model_id>/delete/", views.uploaded_model_delete_page, name="delete"),
]
