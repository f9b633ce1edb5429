"""Re-queue or fail jobs whose worker died or whose queue message was lost (workers also do this every EXPLAINER_JOB_SWEEP_SECONDS)."""

from datetime import timedelta

from django.core.management.base import BaseCommand

from explanations.pipeline import jobs_stale_sweep


class Command(BaseCommand):
    help = "Re-queue job steps whose worker stopped responding; fail jobs that keep losing their worker."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--stale-seconds", type=int, default=0,
                            help="Silence after which a running task counts as dead (default: the settings').")
        parser.add_argument("--queue-timeout-seconds", type=int, default=0,
                            help="Wait after which a never-started step counts as lost (default: the settings').")

    def handle(self, *args, stale_seconds: int, queue_timeout_seconds: int, **options) -> None:
        swept = jobs_stale_sweep(stale_after=timedelta(seconds=stale_seconds) if stale_seconds else None,
                                 queue_timeout=timedelta(seconds=queue_timeout_seconds) if queue_timeout_seconds else None)
        self.stdout.write(f"Re-queued steps of jobs {swept['requeued']}; "
                          f"failed jobs {swept['failed']}.")
