from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from datasets import api as datasets_api
from explainer_site.views import ApiDocsView, ApiSchemaView
from explanations import api as explanations_api
from uploaded_models import api as uploaded_models_api

api_patterns = [
    path("datasets/", datasets_api.DatasetListApi.as_view(), name="datasets"),
    path("datasets/<int:dataset_id>/", datasets_api.DatasetDetailApi.as_view(), name="dataset"),
    path("datasets/<int:dataset_id>/schema/", datasets_api.DatasetSchemaApi.as_view(), name="dataset_schema"),
    path("datasets/<int:dataset_id>/models/", uploaded_models_api.UploadedModelListApi.as_view(), name="dataset_models"),
    path("models/<int:model_id>/", uploaded_models_api.UploadedModelDetailApi.as_view(), name="model"),
    path("classifiers/", explanations_api.ClassifierListApi.as_view(), name="classifiers"),
    path("explainers/", explanations_api.ExplainerListApi.as_view(), name="explainers"),
    path("jobs/", explanations_api.JobListApi.as_view(), name="jobs"),
    path("jobs/compare/", explanations_api.JobCompareApi.as_view(), name="jobs_compare"),
    path("jobs/<int:job_id>/", explanations_api.JobDetailApi.as_view(), name="job"),
    path("jobs/<int:job_id>/cancel/", explanations_api.JobCancelApi.as_view(), name="job_cancel"),
    path("jobs/<int:job_id>/explanations/", explanations_api.JobExplanationsApi.as_view(), name="job_explanations"),
    path("jobs/<int:job_id>/download/", explanations_api.JobDownloadApi.as_view(), name="job_download"),
    path("jobs/<int:job_id>/whatif/", explanations_api.JobWhatIfApi.as_view(), name="job_whatif"),
    path("jobs/<int:job_id>/summary/", explanations_api.JobSummaryApi.as_view(), name="job_summary"),
    path("jobs/<int:job_id>/rerun/", explanations_api.JobRerunApi.as_view(), name="job_rerun"),
    path("jobs/<int:job_id>/report/", explanations_api.JobReportApi.as_view(), name="job_report"),
    path("jobs/<int:job_id>/share/", explanations_api.JobShareApi.as_view(), name="job_share"),
    path("jobs/<int:job_id>/scenarios/", explanations_api.JobScenarioListApi.as_view(), name="job_scenarios"),
    path("jobs/<int:job_id>/scenarios/<int:scenario_id>/", explanations_api.JobScenarioDetailApi.as_view(),
         name="job_scenario"),
    path("jobs/<int:job_id>/network/", explanations_api.JobNetworkApi.as_view(), name="job_network"),
    path("jobs/<int:job_id>/network/visualise/", explanations_api.JobNetworkVisualiseApi.as_view(),
         name="job_network_visualise"),
    path("jobs/<int:job_id>/network/groups/", explanations_api.JobNetworkGroupsApi.as_view(), name="job_network_groups"),
    path("jobs/<int:job_id>/network/views/<int:view_id>/", explanations_api.JobNetworkViewApi.as_view(),
         name="job_network_view"),
    path("jobs/<int:job_id>/adversarial/", explanations_api.JobAdversarialApi.as_view(), name="job_adversarial"),
    path("schema/", ApiSchemaView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up code as a script file (?script), which the CSP allows.
    path("docs/", ApiDocsView.as_view(url_name="api:schema"), name="docs"),
]

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="datasets:list", permanent=False)),
    path("accounts/", include("accounts.urls")),
    path("datasets/", include("datasets.urls")),
    path("", include("explanations.urls")),
    path("", include("uploaded_models.urls")),
    path("api/", include((api_patterns, "api"))),
    path("admin/", admin.site.urls),
]

handler400 = "explainer_site.views.bad_request"
handler403 = "explainer_site.views.permission_denied"
handler404 = "explainer_site.views.page_not_found"
handler500 = "explainer_site.views.server_error"
