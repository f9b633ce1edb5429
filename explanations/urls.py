from django.urls import path

from . import views

app_name = "explanations"
urlpatterns = [
    path("jobs/", views.job_list_page, name="jobs"),
    path("jobs/new/", views.job_new, name="job_new"),
    path("jobs/compare/", views.jobs_compare_page, name="compare"),
    path("jobs/estimate/", views.job_estimate, name="job_estimate"),
    path("jobs/<int:job_id>/", views.job_detail, name="job"),
    path("jobs/<int:job_id>/status/", views.job_status, name="job_status"),
    path("jobs/<int:job_id>/cancel/", views.job_cancel_page, name="job_cancel"),
    path("jobs/<int:job_id>/delete/", views.job_delete_page, name="job_delete"),
    path("jobs/<int:job_id>/rerun/", views.job_rerun_page, name="job_rerun"),
    path("jobs/<int:job_id>/results/", views.job_results, name="results"),
    path("jobs/<int:job_id>/rows/<int:row>/", views.job_row, name="row"),
    path("jobs/<int:job_id>/network/", views.job_network, name="network"),
    path("jobs/<int:job_id>/download.zip", views.job_download, name="download"),
    path("plots/<int:plot_id>.<str:extension>", views.plot_file, name="plot_file"),
    path("jobs/<int:job_id>/report.html", views.job_report_page, name="report"),
    path("jobs/<int:job_id>/share/", views.job_share_page, name="job_share"),
    path("jobs/<int:job_id>/unshare/", views.job_unshare_page, name="job_unshare"),
    path("shared/<str:token>/", views.shared_report, name="shared"),
]
