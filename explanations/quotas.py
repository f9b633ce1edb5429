"""What one account may ask of the workers: how many jobs at once, and how big one job may be.

A job's cost is an estimate of the model evaluations its explanations take: rows × classifiers × the samples
each explainer draws per row × (1 + stability reruns); an image job adds the images its trust scores explain
again (the sanity check, once per randomised layer, and ROAR's training and test images). It is read from the
cleaned options, before anything is queued, so a job the workers could not finish in reasonable time is refused
with the sentence that says how to make it fit.
"""

from __future__ import annotations

import math

from django.conf import settings

from datasets.models import Dataset
from explainer_site.exceptions import ApplicationError
from explanations.ml.catalogue import explainer_entry
from explanations.ml.modalities import schema_modality
from explanations.models import Job, JobStatus
from explanations.rows import rows_count_estimate


def explainer_samples(key: str, params: dict, modality: str = "tabular") -> int:
    """Model evaluations one row costs with explainer ``key`` and its cleaned ``params`` (its catalogue entry says)."""
    return explainer_entry(key, modality).samples_per_row(params)


def job_rows_estimate(*, dataset: Dataset, rows: dict, test_size: float) -> int:
    """How many rows a cleaned row spec explains, at most (the test split bounds random and misclassified rows)."""
    n_test = min(max(math.ceil(dataset.n_rows * test_size), 1), settings.EXPLAINER_MAX_TEST_ROWS,
                 settings.EXPLAINER_MAX_JOB_ROWS)
    return rows_count_estimate(rows, n_test=n_test)


# The sanity check explains each of its images again on one copy of the network per weighted layer; the app's CNN
# has four (two convolutions, two dense layers: ml/torch_cnn.py; tests/explanations/test_fairness.py checks it).
CNN_WEIGHTED_LAYERS = 4


def roar_retrainings(explainers: int) -> int:
    """How often ROAR trains the CNN again: each method and the random baseline at each share, and the unchanged
    images (``ml.roar.roar_table``, three shares)."""
    return (explainers + 1) * 3 + 1


def image_trust_images(*, n_rows: int, trust: dict, rows: int, test_size: float) -> int:
    """Images each explainer of an image job explains again for its trust scores, per classifier: the sanity
    check's (its first images, once per randomised layer) and ROAR's (training images and a third as many test
    images, as ``image_trust_run.roar_table_build`` picks them)."""
    sanity = min(int(trust.get("sanity_images", 0)), rows) * CNN_WEIGHTED_LAYERS
    n_test = max(math.ceil(n_rows * test_size), 1)
    n_train = min(int(trust.get("roar_images", 0)), max(n_rows - n_test, 0))
    roar = n_train + min(max(n_train // 3, 10), n_test) if n_train >= 10 else 0
    return sanity + roar


def job_cost(*, dataset: Dataset, options: dict) -> int:
    """classifiers × Σ samples per explainer × (rows × (1 + stability reruns) + images the image trust scores
    explain again), from ``job_options_clean``'s answer."""
    params = options["params"]
    rows = job_rows_estimate(dataset=dataset, rows=options["rows"], test_size=params["test_size"])
    modality = schema_modality(dataset.schema)
    samples = sum(explainer_samples(key, params.get(key) or {}, modality) for key in options["explainers"])
    trust = params.get("trust") or {}
    reruns = int(trust.get("stability_runs", 0))
    again = (image_trust_images(n_rows=dataset.n_rows or 0, trust=trust, rows=rows, test_size=params["test_size"])
             if modality == "image" else 0)
    return len(options["classifiers"]) * samples * (rows * (1 + reruns) + again)


def job_cost_check(*, dataset: Dataset, options: dict) -> int:
    """The job's cost; ``ApplicationError`` (400) with the limit and the way back under it when it is too big."""
    cost, limit = job_cost(dataset=dataset, options=options), settings.EXPLAINER_MAX_JOB_COST
    if limit and cost > limit:
        raise ApplicationError(
            f"This job is too big: it would take about {number_text(cost)} model evaluations (rows × classifiers × "
            f"samples per explainer × (1 + stability reruns){image_cost_words(dataset)}), and one job may take at most "
            f"{number_text(limit)}. Explain fewer rows, pick fewer classifiers or explainers, or lower the samples or "
            f"stability reruns{image_fix_words(dataset)}.",
            {"field": "cost", "cost": cost, "limit": limit})
    return cost


def image_cost_words(dataset: Dataset) -> str:
    return ", plus the images the sanity check and ROAR explain again" if schema_modality(dataset.schema) == "image" else ""


def image_fix_words(dataset: Dataset) -> str:
    return (", or the images for the sanity check and ROAR" if schema_modality(dataset.schema) == "image" else "")


def active_jobs_check(*, owner) -> None:
    """``ApplicationError`` (429) once ``owner`` has as many queued or running jobs as one account may have.

    Call it inside the transaction that saves the job, after locking the owner's row, so that concurrent
    submissions are counted one after the other.
    """
    limit = settings.EXPLAINER_MAX_ACTIVE_JOBS_PER_USER
    if not limit:
        return
    active = Job.objects.filter(owner=owner, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).count()
    if active >= limit:
        raise ApplicationError(
            f"You already have {active} job{'s' if active != 1 else ''} queued or running, and one account may have "
            f"at most {limit} at a time. Wait for one to finish or cancel one, then submit this job again.",
            {"field": "quota", "active": active, "limit": limit}, status=429)


def number_text(value: int) -> str:
    for size, word in ((10**9, "billion"), (10**6, "million")):
        if value >= size:
            return f"{value / size:.3g} {word}"
    return f"{value:,}"
