from django.apps import AppConfig
from django.db.models.signals import pre_delete


class ExplanationsConfig(AppConfig):
    name = "explanations"
    verbose_name = "Explanations"

    def ready(self) -> None:
        from explanations.models import Job
        from explanations.receivers import job_files_delete

        pre_delete.connect(job_files_delete, sender=Job, dispatch_uid="explanations.job_files_delete")
        from datasets.demo import demo_account_ready
        from explanations.demo_example import demo_example_made

        demo_account_ready.connect(demo_example_made, dispatch_uid="explanations.demo_example")
