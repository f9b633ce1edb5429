"""Trust scores for an image job: the Django side of ``explanations.ml.image_trust`` and ``explanations.ml.roar``.

Three moments of one classifier's run, each called by the run (``text_image_run``):

- ``image_trust_compute`` on every batch of explanations, before they are saved: deletion/insertion AUC and
  faithfulness for every image; stability from reruns with other seeds (methods that declare themselves
  ``stochastic``); the sanity check on the run's first ``sanity_images`` images.
- ``image_agreement_finish`` once every explainer has explained the run's images: agreement between their maps.
- ``roar_run`` then: remove and retrain, the job-level table in ``ModelRun.metrics["roar"]``.

A metric that cannot be measured is null, and ``trust["not_measured"]`` says why; a metric that fails is logged
and left null, it never stops the job.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files.storage import default_storage

from explanations.job_data import JobData
from explanations.ml import image_trust, roar
from explanations.ml.engine import stop_check
from explanations.ml.explainers import EXPLAINER_VARIANTS
from explanations.ml.explainers.base import row_seed
from explanations.ml.modalities import explainer_for
from explanations.ml.trust import trust_params_clean
from explanations.models import Explanation, Job, ModelRun
from uploaded_models.job_classifiers import classifier_label_of

if TYPE_CHECKING:  # the web process imports this module for the ROAR summary: no torch there
    from explanations.ml.explainers.image import ImagePredictor

logger = logging.getLogger(__name__)

AGREEMENT_PENDING = "measured once every explainer of the job has explained this image"


def trust_options(job: Job) -> dict[str, Any]:
    """The job's trust settings; jobs from before the image metrics get their defaults, stability off."""
    return trust_params_clean({"stability_runs": 0, "sanity_images": 0, "roar_images": 0, **(job.params.get("trust") or {})},
                              image=True)


def explainer_fitted(*, job: Job, data: JobData, predictor, key: str, seed: int):
    return explainer_for(key, "image")(**job.params.get(key, {})).fit(data.background(int(job.params["seed"])),
                                                                      predictor, data.space, seed=seed)


def results_maps(results, labels: list[int] | None = None) -> list[np.ndarray]:
    """Each result's (h, w) map, towards its own class or the given ones."""
    return [image_trust.class_map(r.attribution, r.data, None if labels is None else labels[i])
            for i, r in enumerate(results)]


def image_trust_compute(*, job: Job, run: ModelRun, data: JobData, predictor: ImagePredictor, results: list) -> dict[int, dict]:
    """``trust`` per row of one batch of one explainer's results (``ImageExplanation``s, before they are saved)."""
    results = [r for r in results if getattr(r, "attribution", None) is not None]
    if not results:
        return {}
    options = trust_options(job)
    key, seed = results[0].method, int(job.params["seed"])
    explainer_cls = explainer_for(key, "image")
    rows = [r.row for r in results]
    maps = results_maps(results)
    reruns, not_measured = stability_reruns(job=job, data=data, predictor=predictor, key=key, rows=rows,
                                            runs=int(options["stability_runs"]), labels=[r.data["label"] for r in results])
    sanity = sanity_of_rows(job=job, run=run, data=data, predictor=predictor, key=key, results=results, maps=maps,
                            images=int(options["sanity_images"]))
    out = {}
    for i, result in enumerate(results):
        stop_check()
        try:
            trust = image_trust.image_explanation_trust(
                predict_proba=predictor.predict_proba, image=data.X[result.row], value_map=maps[i],
                label=int(result.data["label"]), reruns=[run_maps[i] for run_maps in reruns], seed=row_seed(seed, result.row))
        except SoftTimeLimitExceeded:
            raise
        except Exception:
            logger.exception("image trust of %s on row %s failed", key, result.row)
            continue
        reasons = {"agreement": AGREEMENT_PENDING}
        if trust["stability"] is None:
            reasons["stability"] = not_measured
        checked = sanity.get(result.row)
        if checked is None:
            reasons["sanity"] = (f"checked on the first {options['sanity_images']} explained images of each explainer"
                                 if options["sanity_images"] else "the sanity check was turned off for this job")
        out[result.row] = {**dict.fromkeys(image_trust.IMAGE_TRUST_KEYS), **trust,
                           "sanity": None if checked is None else checked["similarity"],
                           "sanity_fails": None if checked is None else checked["fails"],
                           "sanity_layers": [] if checked is None else checked["layers"],
                           "stability_seeds": [seed + 1 + k for k in range(len(reruns))],
                           "not_measured": reasons, "method_stochastic": bool(explainer_cls.stochastic)}
    return out


def stability_reruns(*, job: Job, data: JobData, predictor, key: str, rows: list[int], runs: int, labels: list[int]
                     ) -> tuple[list[list[np.ndarray]], str]:
    """The maps of the same rows explained with ``runs`` other seeds; none (and why) where that measures nothing."""
    explainer_cls = explainer_for(key, "image")
    if not explainer_cls.stochastic:
        return [], f"{explainer_cls.label} gives the same map for any seed, so reruns would measure nothing"
    if runs <= 0:
        return [], "reruns were turned off for this job (Trust settings: reruns to measure stability)"
    out = []
    seed = int(job.params["seed"])
    try:
        for k in range(runs):
            stop_check()
            explainer = explainer_fitted(job=job, data=data, predictor=predictor, key=key, seed=seed + 1 + k)
            out.append(results_maps(explainer.explain(data.X[rows], rows), labels))
    except SoftTimeLimitExceeded:
        raise
    except Exception:
        logger.exception("stability reruns of %s failed", key)
        return [], "the reruns failed"
    return out, ""


def sanity_of_rows(*, job: Job, run: ModelRun, data: JobData, predictor: ImagePredictor, key: str, results: list,
                   maps: list[np.ndarray], images: int) -> dict[int, dict]:
    """The cascading-randomisation check for the results among the run's first ``images`` rows.

    The maps on a randomised network are taken towards the class the original map explains; a superpixel method
    maps only the classes it explained there (the random network's own top two), and then its first map is used.
    """
    chosen = [i for i, r in enumerate(results) if r.row in set(run.rows[:images])]
    if not chosen or getattr(predictor, "module", None) is None:
        return {}
    rows = [results[i].row for i in chosen]
    labels = [int(results[i].data["label"]) for i in chosen]
    seed = int(job.params["seed"])
    n_classes = len(data.space.class_names)

    def explain_on(network: image_trust.RandomisedNetwork) -> list[np.ndarray]:
        stop_check()
        randomised = image_trust.network_predictor(predictor, network, n_classes)
        explainer = explainer_fitted(job=job, data=data, predictor=randomised, key=key, seed=seed)
        return results_maps(explainer.explain(data.X[rows], rows), labels)

    try:
        networks = image_trust.cascading_randomisation(predictor.module, seed=seed)
        checks = image_trust.sanity_check([maps[i] for i in chosen], explain_on, networks)
    except SoftTimeLimitExceeded:
        raise
    except Exception:
        logger.exception("sanity check of %s failed", key)
        return {}
    return dict(zip(rows, checks))


# ---------------------------------------------------------------- once every explainer is done


def attribution_map(explanation: Explanation) -> np.ndarray | None:
    """The saved map (``text_image_run.attribution_store`` wrote it) towards the explained class. Read here rather
    than through ``text_image_run``, which calls this module: no import circle."""
    path = explanation.meta.get("attribution_file")
    if not path or not default_storage.exists(path):
        return None
    with default_storage.open(path, "rb") as handle:
        attribution = np.load(handle, allow_pickle=False)
    return image_trust.class_map(attribution, explanation.data)


def image_agreement_finish(*, job: Job, run: ModelRun) -> None:
    """Agreement of each image's map with the other explainers' maps of the same image."""
    by_row: dict[int, list[tuple[Explanation, np.ndarray]]] = defaultdict(list)
    for e in Explanation.objects.filter(job=job, classifier=run.classifier):
        value_map = attribution_map(e)
        if value_map is not None:
            by_row[e.row].append((e, value_map))
    for group in by_row.values():
        for e, value_map in group:
            value = image_trust.agreement(value_map, [other for o, other in group if o.pk != e.pk])
            reasons = dict((e.trust or {}).get("not_measured") or {})
            reasons.pop("agreement", None)
            if value is None:
                reasons["agreement"] = "no other explainer of this job mapped this image"
            trust = {**dict.fromkeys(image_trust.IMAGE_TRUST_KEYS), **(e.trust or {}),
                     "agreement": image_trust.rounded(value), "not_measured": reasons}
            Explanation.objects.filter(pk=e.pk).update(trust=trust)


def roar_run(*, job: Job, run: ModelRun, data: JobData, predictor: ImagePredictor, stage: Callable[[str], bool]) -> None:
    """Remove and retrain for every explainer of the job on a sample of images; never fails the job. ``stage(text)``
    shows what runs now and answers False once the job stopped (``services.job_state.job_stage_set``, passed in by the
    run so that this module imports no service)."""
    options = trust_options(job)
    n_train = min(int(options["roar_images"]), len(data.train_idx))
    if n_train < 10 or (run.metrics or {}).get("roar"):
        return
    try:
        table = roar_table_build(job=job, run=run, data=data, predictor=predictor, n_train=n_train,
                                 epochs=int(options["roar_epochs"]), stage=stage)
    except SoftTimeLimitExceeded:
        raise
    except Exception:
        logger.exception("job %s: ROAR failed", job.pk)
        table = {"error": "Remove-and-retrain could not be measured for this job."}
    if table is None:  # the job stopped meanwhile
        return
    metrics = ModelRun.objects.get(pk=run.pk).metrics
    metrics["roar"] = table
    ModelRun.objects.filter(pk=run.pk).update(metrics=metrics)
    run.metrics = metrics


def roar_table_build(*, job: Job, run: ModelRun, data: JobData, predictor: ImagePredictor, n_train: int, epochs: int,
                     stage) -> dict[str, Any] | None:
    from explanations.ml.image_models import cnn_fit

    seed = int(job.params["seed"])
    rng = np.random.default_rng(seed)
    train = np.sort(rng.choice(data.train_idx, n_train, replace=False))
    test = np.sort(rng.choice(data.test_idx, min(max(n_train // 3, 10), len(data.test_idx)), replace=False))
    train_maps, test_maps = {}, {}
    for key in job.explainers:
        label = explainer_for(key, "image").label
        explainer = explainer_fitted(job=job, data=data, predictor=predictor, key=key, seed=seed)
        maps = []
        for start in range(0, len(train) + len(test), settings.EXPLAINER_BATCH_SIZE):
            rows = [int(r) for r in np.concatenate([train, test])[start:start + settings.EXPLAINER_BATCH_SIZE]]
            if not stage(f"Remove and retrain: explaining images {start + 1}–{start + len(rows)} of "
                         f"{len(train) + len(test)} with {label}"):
                return None
            maps.extend(results_maps(explainer.explain(data.X[rows], rows)))
        train_maps[key], test_maps[key] = np.array(maps[:len(train)]), np.array(maps[len(train):])
    params = {**job.params["classifiers"].get(run.classifier, {})}
    params["epochs"] = epochs

    def fit_predict(images: np.ndarray, y: np.ndarray, test_images: np.ndarray) -> np.ndarray:
        stop_check()
        return cnn_fit(params, images, y, seed=seed).predict(test_images)

    if not stage(f"Remove and retrain: training the CNN again {len(job.explainers) * len(roar.ROAR_SHARES) + 4} times"):
        return None
    table = roar.roar_table(train_images=data.X[train], y_train=data.y[train], test_images=data.X[test],
                            y_test=data.y[test], train_maps=train_maps, test_maps=test_maps, fit_predict=fit_predict,
                            seed=seed)
    table["epochs"] = params["epochs"]
    return table


def roar_summary(*, job: Job) -> dict[str, Any]:
    """Remove-and-retrain per classifier (image jobs): accuracy drop per method and share of pixels removed."""
    out = {}
    for run in job.runs.all():
        table = (run.metrics or {}).get("roar")
        if not table:
            continue
        entry = {**table, "classifier_label": classifier_label_of(run.classifier)}
        entry["methods"] = [{**m, "label": "Random pixels (baseline)" if m["method"] == roar.RANDOM
                             else EXPLAINER_VARIANTS["image"][m["method"]].label if m["method"] in EXPLAINER_VARIANTS["image"]
                             else m["method"],
                             "cells": [{"accuracy": a, "change": -d} for a, d in zip(m["accuracy"], m["drop"])]}
                            for m in table.get("methods", [])]
        out[run.classifier] = entry
    return out
