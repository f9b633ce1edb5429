from django.urls import path

from . import views

app_name = "datasets"
urlpatterns = [
    path("", views.dataset_list_page, name="list"),
    path("upload/", views.dataset_upload, name="upload"),
    path("demo/<slug:key>/", views.dataset_demo, name="demo"),
    path("<int:dataset_id>/", views.dataset_detail, name="detail"),
    path("<int:dataset_id>/schema/", views.dataset_schema, name="schema"),
    path("<int:dataset_id>/delete/", views.dataset_delete_page, name="delete"),
]
