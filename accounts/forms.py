from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from .services import login_failure_record, login_failures_clear, login_lockout_minutes


class RateLimitedAuthenticationForm(AuthenticationForm):
    """The usual sign-in form, refusing to check passwords after too many failures from one address."""

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        ip = self.request.META.get("REMOTE_ADDR", "") if self.request else ""
        minutes = login_lockout_minutes(username=username, ip=ip)
        if minutes:
            raise ValidationError(
                f"Too many failed sign-in attempts. Wait {minutes} minute{'s' if minutes != 1 else ''} and try again.",
                code="too_many_attempts")
        try:
            cleaned = super().clean()
        except ValidationError:
            login_failure_record(username=username, ip=ip)
            raise
        login_failures_clear(username=username, ip=ip)
        return cleaned
