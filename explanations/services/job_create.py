"""A new job: its request validated (every problem an ``ApplicationError`` naming its field), recorded, its first
steps queued once the row is committed; and a rerun of a finished job with the same settings."""

from __future__ import annotations

import logging

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from datasets.models import Dataset
from explainer_site.exceptions import ApplicationError
from explanations import quotas
from explanations.insights import insight_params_clean
from explanations.ml.catalogue import IMAGE_EXPLAINERS_CALLING_ONLY, explainer_entry, explainer_variant
from explanations.ml.classifiers import CLASSIFIERS
from explanations.ml.explainers import EXPLAINERS, explainer_explains
from explanations.ml.explainers.base import ExplainerError, number_parse, params_clean
from explanations.ml.modalities import schema_modality
from explanations.models import Job, ModelRun
from explanations.pipeline import job_steps_start, steps_feed
from explanations.rows import rows_spec_clean, rows_spec_resubmit
from explanations.services.job_delete import job_delete
from uploaded_models.job_classifiers import classifier_spec_of

logger = logging.getLogger(__name__)

TEST_SIZE_DEFAULT = 0.25


def job_options_clean(*, dataset: Dataset, classifiers: list[str], explainers: list[str], rows: dict,
                      params: dict | None) -> dict:
    """Validate a job request; every problem is an ``ApplicationError`` naming its field and the fix."""
    if not dataset.schema:
        raise ApplicationError("Name the dataset's columns first (which one to predict, which are features).",
                               {"field": "dataset"})
    classifiers = list(dict.fromkeys(classifiers or []))
    explainers = list(dict.fromkeys(explainers or []))
    if not classifiers:
        raise ApplicationError("Pick at least one classifier.", {"field": "classifiers"})
    if not explainers:
        raise ApplicationError("Pick at least one explainer.", {"field": "explainers"})
    modality = schema_modality(dataset.schema)
    try:  # which keys (and which of their variants) serve this dataset's kind of data
        classifier_specs = {key: classifier_spec_of(key, modality, dataset=dataset) for key in classifiers}
    except KeyError as exc:
        raise ApplicationError(str(exc.args[0]), {"field": "classifiers"}) from None
    try:
        # the catalogue's entries: checking a job loads no explainer implementation in the web process
        explainer_classes = {key: explainer_entry(key, modality) for key in explainers}
    except ExplainerError as exc:
        raise ApplicationError(str(exc), {"field": "explainers"}) from None
    for explainer_cls in explainer_classes.values():  # gradient methods need the network's gradients
        refused = [classifier_specs[c].label for c in classifiers if not explainer_explains(explainer_cls, c)]
        if refused:
            raise ApplicationError(f"{explainer_cls.label} cannot explain {', '.join(refused)}: it needs the network's "
                                   f"gradients. Leave it out, or pick only {', '.join(CLASSIFIERS[c].label for c in explainer_cls.classifiers)}.",
                                   {"field": "explainers"})
    if modality == "image":  # an uploaded ONNX graph is only called: the methods that read gradients cannot run
        called_only = [spec.label for spec in classifier_specs.values() if not getattr(spec, "gradients", True)]
        refused = [e.label for key, e in explainer_classes.items() if key not in IMAGE_EXPLAINERS_CALLING_ONLY]
        if called_only and refused:
            raise ApplicationError(
                f"{', '.join(refused)} cannot explain {', '.join(called_only)}: they need the network's gradients, and "
                f"an ONNX model is only called. Leave them out, or pick "
                f"{', '.join(explainer_entry(k, 'image').label for k in IMAGE_EXPLAINERS_CALLING_ONLY)}.",
                {"field": "explainers"})
    params = dict(params or {})
    clean: dict = {}
    try:
        test_size = number_parse(params.pop("test_size", TEST_SIZE_DEFAULT), whole=False)
        seed = number_parse(params.pop("seed", 0), whole=True)
    except ValueError:
        raise ApplicationError("Test split must be a fraction such as 0.25 and seed a whole number.", {"field": "params"}) from None
    if not 0.05 <= test_size <= 0.5:
        raise ApplicationError(f"Test split must be between 0.05 and 0.5 (got {test_size:g}).", {"field": "test_size"})
    if not 0 <= seed <= 2**31 - 1:
        raise ApplicationError("Seed must be a whole number between 0 and 2147483647.", {"field": "seed"})
    clean["test_size"], clean["seed"] = test_size, seed
    classifier_params = params.pop("classifiers", {}) or {}
    if not isinstance(classifier_params, dict):
        raise ApplicationError("Classifier settings must be an object by classifier, such as "
                               "{\"random_forest\": {\"n_estimators\": 100}}.", {"field": "params"})
    clean["classifiers"] = {}
    for key in classifiers:
        try:
            clean["classifiers"][key] = params_clean(classifier_specs[key].params, classifier_params.get(key) or params.pop(key, None))
        except ValueError as exc:
            raise ApplicationError(f"{classifier_specs[key].label}: {exc}", {"field": key}) from None
    for key in explainers:
        try:
            clean[key] = params_clean(explainer_classes[key].params, params.pop(key, None),
                                      features=dataset.schema.get("features", []))
        except ValueError as exc:
            raise ApplicationError(f"{explainer_classes[key].label}: {exc}", {"field": key}) from None
    clean.update(insight_params_clean(params=params, features=dataset.schema.get("features", []),
                                      image=bool(dataset.schema.get("image_shape"))))
    stray = [k for k in params if k not in EXPLAINERS and k not in CLASSIFIERS]
    if stray:
        raise ApplicationError(f"Unknown parameter group(s): {', '.join(stray)}.", {"field": "params"})
    return {"classifiers": classifiers, "explainers": explainers, "rows": rows_spec_clean(dataset=dataset, rows=rows),
            "params": clean}


def job_create(*, owner, dataset: Dataset, classifiers: list[str], explainers: list[str], rows: dict | None = None,
               params: dict | None = None, request_key: str = "") -> Job:
    """Record the job and queue one task per classifier once the row is committed. Same ``request_key`` = same job.

    When the queue cannot take the tasks the job is deleted again and ``ApplicationError`` (503) says so:
    a job is either queued or not there, never silently stuck. A job over the cost limit (400) or past the
    owner's number of active jobs (429) is refused with the sentence that says how to fit (``quotas``).
    """
    options = job_options_clean(dataset=dataset, classifiers=classifiers, explainers=explainers, rows=rows, params=params)
    quotas.job_cost_check(dataset=dataset, options=options)
    request_key = (request_key or "")[:64]
    with transaction.atomic():
        if request_key:
            existing = Job.objects.filter(owner=owner, request_key=request_key).first()
            if existing:
                return existing
        # One submission of this owner at a time from here to the commit, so a burst is counted job by job
        # (SQLite's immediate transactions already serialise writers; PostgreSQL needs the row lock).
        get_user_model().objects.select_for_update().filter(pk=owner.pk).first()
        quotas.active_jobs_check(owner=owner)
        job = Job(owner=owner, dataset=dataset, classifiers=options["classifiers"], explainers=options["explainers"],
                  rows_spec=options["rows"], params=options["params"], schema=dataset.schema, request_key=request_key,
                  stage="Waiting for a worker")
        job.full_clean(exclude=["result_zip"], validate_constraints=False)
        try:
            with transaction.atomic():
                job.save()
        except IntegrityError:  # the same form posted twice at once: the other request made the job
            return Job.objects.get(owner=owner, request_key=request_key)
        now = timezone.now()
        ModelRun.objects.bulk_create(ModelRun(job=job, classifier=key, queued_at=now) for key in job.classifiers)
        job_steps_start(job=job)
        transaction.on_commit(lambda: job_enqueue(job=job))
    return job


def job_enqueue(*, job: Job) -> None:
    """Send the job's first steps (its training), or as many as the owner's allowance in the queue takes."""
    try:
        steps_feed(owner_id=job.owner_id, strict=True)
    except Exception as exc:  # whatever the broker says, the job was not queued
        logger.exception("job %s could not be queued", job.pk)
        with transaction.atomic():
            job_delete(job=job)
        raise ApplicationError("The job queue is unavailable right now, so nothing was started. Try again in a minute.",
                               {"field": "queue"}, status=503) from exc


@transaction.atomic
def job_rerun(*, job: Job) -> Job:
    """A new job with the same dataset, schema, classifiers, explainers, rows, parameters and seeds."""
    rows = rows_spec_resubmit(job.rows_spec)
    modality = schema_modality(job.schema)
    params = dict(job.params)
    for key, settings in job.params.items():  # an older job ran without settings added since: keep what it did
        entry = explainer_variant(key, modality) if isinstance(settings, dict) else None
        before = {name: value for name, value in (entry.params_before if entry else ()) if name not in settings}
        if before:
            params[key] = {**settings, **before}
    new = job_create(owner=job.owner, dataset=job.dataset, classifiers=list(job.classifiers),
                     explainers=list(job.explainers), rows=rows, params=params)
    if new.schema != job.schema:  # the dataset's columns were renamed since: keep the old job's (tasks start on commit)
        Job.objects.filter(pk=new.pk).update(schema=job.schema)
        new.schema = job.schema
    return new

