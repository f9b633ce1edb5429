"""Create the demo user and give them the bundled demo datasets (idempotent)."""

import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from rest_framework.authtoken.models import Token

from datasets.demo import DEMOS, demo_account_ready, demo_csv_path, demo_dataset_create
from datasets.models import Dataset


class Command(BaseCommand):
    help = "Export scikit-learn's bundled datasets as CSV and create a demo user who owns them."

    def add_arguments(self, parser):
        parser.add_argument("--username", default=os.environ.get("EXPLAINER_DEMO_USER", "demo"))
        parser.add_argument("--password", default=os.environ.get("EXPLAINER_DEMO_PASSWORD", "explain-me-2026"))

    def handle(self, *args, username: str, password: str, **options):
        User = get_user_model()
        user, created = User.objects.get_or_create(username=username)
        if created:
            user.set_password(password)
            user.save()
        for key, demo in DEMOS.items():
            demo_csv_path(key)
            if not Dataset.objects.filter(owner=user, name=demo.name, is_demo=True).exists():
                demo_dataset_create(owner=user, key=key)
        self.example_ensure(user)
        token, _ = Token.objects.get_or_create(user=user)
        self.stdout.write(self.style.SUCCESS(
            f"Demo login: username “{username}”, password “{password if created else '(unchanged)'}”; API token {token.key}"))

    def example_ensure(self, user) -> None:
        """What other apps add for a first visit (a finished example job); a failure is said, never fatal."""
        for _receiver, answer in demo_account_ready.send_robust(sender=self.__class__, owner=user):
            if isinstance(answer, Exception):  # make run must start anyway
                self.stdout.write(self.style.WARNING(f"The example could not be made ({answer}); the app works without it."))
            elif answer:
                self.stdout.write(str(answer))
