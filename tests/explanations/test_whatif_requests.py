"""A what-if asked for after the job ran is drawn by a worker, never in the web request; the page says so."""

from unittest.mock import patch

import pytest

from explanations.models import ModelRun, WhatIf
from explanations.tasks import whatif_draw
from explanations.whatifs import WHATIF_REDRAW_AFTER
from tests.unit_fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db



def test_the_row_page_says_a_curve_is_being_drawn_then_shows_it(finished, client, user, django_capture_on_commit_callbacks):
    client.force_login(user)
    with django_capture_on_commit_callbacks(execute=False) as queued, patch(
            "explanations.whatifs.job_models_load", side_effect=AssertionError("a model loaded in the web request")):
        page = client.get(f"/jobs/{finished.pk}/rows/0/?feature=legs")
    html = page.content.decode()
    assert page.status_code == 200 and "Being drawn on a worker: legs" in html and "data-reload-after" in html
    assert len(queued) == 1
    queued[0]()
    html = client.get(f"/jobs/{finished.pk}/rows/0/?feature=legs").content.decode()
    assert "Being drawn" not in html and "What if legs changed" in html


def test_a_curve_that_cannot_be_drawn_says_why_and_can_be_asked_for_again(finished, api, run_on_commit,
                                                                          django_capture_on_commit_callbacks):
    ModelRun.objects.filter(job=finished).update(model_file="")  # as if the model files were lost
    with run_on_commit():
        assert api.get(f"/api/jobs/{finished.pk}/whatif/?row=0&feature=legs").status_code == 202
    body = api.get(f"/api/jobs/{finished.pk}/whatif/?feature=legs")  # partial dependence: never asked for, queued
    assert body.status_code == 202
    failed = WhatIf.objects.get(job=finished, row=0, feature="legs")
    assert failed.status == "failed" and "No trained model" in failed.error
    whatif_draw(failed.pk)  # a redelivered message changes nothing
    assert WhatIf.objects.get(pk=failed.pk).status == "failed"
    polled = api.get(f"/api/jobs/{finished.pk}/whatif/?row=0&feature=legs")  # a poll right after sees the failure
    assert polled.status_code == 200 and polled.json()["status"] == "failed" and "No trained model" in polled.json()["error"]
    WhatIf.objects.filter(pk=failed.pk).update(requested_at=failed.requested_at - WHATIF_REDRAW_AFTER)
    with django_capture_on_commit_callbacks(execute=False) as queued:  # asked for again later: tried again
        again = api.get(f"/api/jobs/{finished.pk}/whatif/?row=0&feature=legs")
    assert again.status_code == 202 and again.json()["status"] == "drawing" and len(queued) == 1


def test_a_broken_task_ends_the_curve_failed_with_a_sentence(finished, api, run_on_commit):
    with patch("explanations.whatifs.whatif_save", side_effect=RuntimeError("/srv/secret/path exploded")), run_on_commit():
        api.get(f"/api/jobs/{finished.pk}/whatif/?row=1&feature=legs")
    body = api.get(f"/api/jobs/{finished.pk}/whatif/?row=1&feature=legs").json()
    assert body["status"] == "failed" and "drawing this curve" in body["error"] and "secret" not in body["error"]
