"""Issue 17: the demo account's first visit shows a finished job at once; ``demo_setup`` twice makes it once."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from datasets.demo import demo_account_ready
from explanations.models import Job

pytestmark = pytest.mark.django_db


def test_demo_setup_twice_makes_one_finished_example_job(client, capsys, django_capture_on_commit_callbacks):
    for _ in range(2):  # a command commits as it goes: its on-commit callbacks (the job's tasks) run at once
        with django_capture_on_commit_callbacks(execute=True):
            call_command("demo_setup", "--username", "demo", "--password", "a-long-password-9")
    user = get_user_model().objects.get(username="demo")
    jobs = list(Job.objects.filter(owner=user))
    assert len(jobs) == 1 and jobs[0].status == "succeeded", [(j.status, j.error) for j in jobs]
    assert jobs[0].explanations.count() == 2 * 3 * 3  # two classifiers × LIME, Anchors, SHAP × 3 rows
    assert f"Example job {jobs[0].pk} is ready" in capsys.readouterr().out  # the second run says it is there
    client.force_login(user)
    first_visit = client.get("/", follow=True).content.decode()
    assert 'id="latest-results"' in first_visit and f'href="/jobs/{jobs[0].pk}/results/"' in first_visit
    html = client.get(f"/jobs/{jobs[0].pk}/results/").content.decode()
    assert "Download everything (ZIP)" in html and "Random forest" in html


def test_a_failing_example_is_said_and_demo_setup_still_succeeds(capsys):
    def broken(sender, **kwargs):
        raise RuntimeError("no worker memory")

    from explanations.demo_example import demo_example_made

    demo_account_ready.disconnect(dispatch_uid="explanations.demo_example")  # the broken one stands in for it
    demo_account_ready.connect(broken, dispatch_uid="test-broken-example")
    try:
        call_command("demo_setup", "--username", "demo2", "--password", "a-long-password-9")
    finally:
        demo_account_ready.disconnect(dispatch_uid="test-broken-example")
        demo_account_ready.connect(demo_example_made, dispatch_uid="explanations.demo_example")
    out = capsys.readouterr().out
    assert "The example could not be made (no worker memory)" in out and "Demo login" in out


@pytest.mark.django_db(transaction=True)  # real commits, as in the command: its on-commit callbacks run at once
def test_the_example_is_finished_when_demo_setup_ends_under_make_run(settings, capsys):
    """``make run``: a real broker, no eager setting. The example's steps still run in demo_setup's process."""
    from unittest import mock

    settings.CELERY_TASK_ALWAYS_EAGER = False
    with mock.patch("celery.app.task.Task.apply_async", side_effect=AssertionError("sent to the broker")):
        call_command("demo_setup", "--username", "demo3", "--password", "a-long-password-9")
    job = Job.objects.get(owner__username="demo3")
    assert job.status == "succeeded", (job.status, job.error)
    assert f"Example job {job.pk} is ready" in capsys.readouterr().out
