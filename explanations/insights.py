"""Trust scores and comparisons for a job's results: the jobs-side use of ``explanations.ml.trust``.

Writes run inside a job's tasks (the steps of ``explanations.job_steps`` call them at the right moments); the reads build
what the row page, the results page, the API and the ZIP show. What-if curves are ``explanations.whatifs``.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from explainer_site.exceptions import ApplicationError
from explanations.image_trust_run import roar_summary
from explanations.job_data import JobData
from explanations.ml import image_trust
from explanations.ml import trust as trust_metrics
from explanations.ml.catalogue import EXPLAINER_VARIANTS, explainer_label
from explanations.ml.engine import stop_check
from explanations.ml.explainers import explainer_for
from explanations.ml.explainers.base import BaseExplainer, ExplanationResult, Predictor, row_seed
from explanations.ml.lazy import lazy
from explanations.ml.representative_rows import representative_rows_pick
from explanations.models import Explanation, Job, ModelRun, WhatIfStatus
from explanations.templatetags.job_text import additivity_text
from explanations.whatifs import whatif_get, whatif_list
from uploaded_models.job_classifiers import classifier_label_of

# Imported where models are fitted and plots drawn (workers), not when the web process loads this module.
rankdata = lazy("scipy.stats", "rankdata")
percent = lazy("explanations.ml.plots.style", "percent")

logger = logging.getLogger(__name__)

WHATIF_FEATURES_MAX = 10
REPRESENTATIVE_ROWS = 5


# ---------------------------------------------------------------- parameters


def insight_params_clean(*, params: dict, features: list[str], image: bool = False) -> dict:
    """Take ``trust`` and ``whatif`` out of a job's raw params and validate them (``ApplicationError`` names the field);
    an ``image`` job's trust settings include the sanity check and ROAR."""
    requested = params.pop("trust", None) or {}
    if not isinstance(requested, dict):
        raise ApplicationError("Trust settings must be an object such as {\"stability_runs\": 5}.", {"field": "trust"})
    try:
        defaults = {"stability_runs": settings.EXPLAINER_TRUST_STABILITY_RUNS}
        if image:
            defaults.update(sanity_images=settings.EXPLAINER_TRUST_SANITY_IMAGES, roar_images=settings.EXPLAINER_TRUST_ROAR_IMAGES)
        trust = trust_metrics.trust_params_clean({**defaults, **requested}, image=image)
    except ValueError as exc:
        raise ApplicationError(f"Trust scores: {exc}", {"field": "trust"}) from None
    whatif = params.pop("whatif", None) or {}
    if not isinstance(whatif, dict) or set(whatif) - {"features"}:
        raise ApplicationError("What-if settings take one entry, “features”: a list of feature names.", {"field": "whatif"})
    chosen = whatif.get("features") or []
    if isinstance(chosen, str):
        chosen = [part.strip() for part in chosen.split(",") if part.strip()]
    if not isinstance(chosen, list):
        raise ApplicationError("What-if features must be a list of feature names.", {"field": "whatif"})
    chosen = list(dict.fromkeys(str(name) for name in chosen))
    unknown = [name for name in chosen if name not in features]
    if unknown:
        raise ApplicationError(f"What-if: {', '.join(unknown[:5])} {'is not a feature' if len(unknown) == 1 else 'are not features'}"
                               f" of this dataset; pick from {', '.join(features[:20])}.", {"field": "whatif"})
    if len(chosen) > WHATIF_FEATURES_MAX:
        raise ApplicationError(f"Pick at most {WHATIF_FEATURES_MAX} what-if features.", {"field": "whatif"})
    return {"trust": trust, "whatif": {"features": chosen}}


# ---------------------------------------------------------------- trust, batch by batch


@dataclass
class TrustMeter:
    """Measures each explanation of one explainer on one classifier; reruns fitted once, then used batch by batch."""

    method: str
    predictor: Predictor
    data: JobData
    seed: int
    background: np.ndarray
    pool: np.ndarray
    reruns: list[BaseExplainer] = field(default_factory=list)
    rerun_seeds: list[int] = field(default_factory=list)

    def measure(self, results: list[ExplanationResult]) -> dict[int, dict]:
        """Trust per row; a metric that fails is logged and left empty, it never stops the job."""
        if not results:
            return {}
        rows = [r.row for r in results]
        reruns: dict[int, list[dict]] = defaultdict(list)
        try:
            stop_check()
            if self.reruns:  # the explainer's class runs its reruns, together where they can share work
                for results_of_seed in type(self.reruns[0]).reruns_explain(self.reruns, self.data.X[rows], rows):
                    for result in results_of_seed:
                        reruns[result.row].append(result.data)
        except SoftTimeLimitExceeded:
            raise
        except Exception:
            logger.exception("stability reruns of %s failed", self.method)
            reruns.clear()
        out = {}
        for result in results:
            try:
                trust = trust_metrics.explanation_trust(
                    method=self.method, data=result.data, x=self.data.X[result.row], predictor=self.predictor,
                    space=self.data.space, background=self.background,
                    pool=self.pool[self.pool_rows != result.row], reruns=reruns.get(result.row, []),
                    seed=row_seed(self.seed, result.row))
            except SoftTimeLimitExceeded:
                raise
            except Exception:
                logger.exception("trust of %s on row %s failed", self.method, result.row)
                continue
            trust["stability_seeds"] = list(self.rerun_seeds) if reruns.get(result.row) else []
            out[result.row] = trust
        return out

    @property
    def pool_rows(self) -> np.ndarray:
        return self.data.test_idx


def trust_meter_build(*, job: Job, data: JobData, predictor: Predictor, explainer_key: str,
                      fitted: BaseExplainer | None = None) -> TrustMeter:
    """The meter of one explainer on one classifier: its reruns with seeds ``seed + 1 ...``, copies of ``fitted``
    (the explain steps' explainer) where it can be reseeded without fitting again (``BaseExplainer.reseeded``)."""
    options = job.params.get("trust") or trust_metrics.trust_params_clean({"stability_runs": 0})  # jobs from before trust
    seed = int(job.params["seed"])
    background = data.background(seed)
    size = min(int(options["background_rows"]), len(background))
    background = background[np.sort(np.random.default_rng(seed).choice(len(background), size, replace=False))]
    meter = TrustMeter(method=explainer_key, predictor=predictor, data=data, seed=seed, background=background,
                       pool=data.X[data.test_idx])
    explainer_cls = explainer_for(explainer_key, "tabular")
    for k in range(int(options["stability_runs"])):
        rerun_seed = seed + 1 + k
        source = fitted if fitted is not None else (meter.reruns[0] if meter.reruns else None)
        rerun = source.reseeded(rerun_seed) if source is not None else None
        if rerun is not None:  # a seed-free explainer is itself: it explains once for every seed
            meter.reruns.append(rerun)
            meter.rerun_seeds.append(rerun_seed)
            continue
        try:
            meter.reruns.append(explainer_cls(**job.params.get(explainer_key, {})).fit(
                data.background(seed), predictor, data.space, seed=rerun_seed))
        except SoftTimeLimitExceeded:
            raise
        except Exception:
            logger.exception("%s could not be fitted with seed %s for stability", explainer_key, rerun_seed)
            break
        meter.rerun_seeds.append(rerun_seed)
    return meter


# ---------------------------------------------------------------- after a classifier's rows


def run_insight_finish(*, job: Job, run: ModelRun, data: JobData) -> None:
    """Once every explainer has explained the run's rows: agreement between them, and the representative rows."""
    names = data.space.feature_names
    tables = EXPLAINER_VARIANTS["tabular"]
    explanations = [e for e in Explanation.objects.filter(job=job, classifier=run.classifier) if e.explainer in tables]
    classes = {key: explainer_for(key, "tabular") for key in {e.explainer for e in explanations}}
    by_row: dict[int, list[tuple[Explanation, np.ndarray]]] = defaultdict(list)
    for e in explanations:
        by_row[e.row].append((e, classes[e.explainer].attributions(e.data, names)))
    for group in by_row.values():
        for e, attribution in group:
            overlaps = [trust_metrics.top_k_overlap(attribution, other) for o, other in group if o.pk != e.pk]
            overlaps = [value for value in overlaps if value is not None]
            agreement = round(float(np.mean(overlaps)), 6) if overlaps else None
            if (e.trust or {}).get("agreement") != agreement:
                Explanation.objects.filter(pk=e.pk).update(trust={**dict.fromkeys(trust_metrics.TRUST_KEYS), **(e.trust or {}),
                                                                  "agreement": agreement})
    for method in [key for key, explainer in tables.items() if explainer.result_kind == "attributions"]:
        chosen = [(e.row, attribution) for group in by_row.values() for e, attribution in group if e.explainer == method]
        if chosen:
            chosen.sort()
            picked = representative_rows_pick(np.array([a for _, a in chosen]), REPRESENTATIVE_ROWS)
            metrics = ModelRun.objects.get(pk=run.pk).metrics
            metrics["representative_rows"] = {"method": method, "rows": [chosen[i][0] for i in picked]}
            ModelRun.objects.filter(pk=run.pk).update(metrics=metrics)
            run.metrics = metrics
            break


# ---------------------------------------------------------------- what-if, once every classifier is trained


# ---------------------------------------------------------------- reads: summary and comparison


def metric_readings(job: Job) -> dict[str, str]:
    """What each metric means in plain words, in pixels for an image job."""
    return {**trust_metrics.METRIC_READINGS, **(image_trust.IMAGE_METRIC_READINGS if job.schema.get("image_shape") else {})}


def metric_descriptions(job: Job) -> list[dict[str, str]]:
    readings = metric_readings(job)
    return [{"key": key, "label": trust_metrics.METRIC_LABELS[key], "reading": readings[key],
             "better": "lower" if key in trust_metrics.LOWER_IS_BETTER else "higher"} for key in trust_metrics.TRUST_KEYS]


def trust_record(trust: dict | None) -> dict[str, float | None]:
    """The API's ``trust``: every metric, ``None`` where it does not apply or was not measured."""
    trust = trust or {}
    return {key: trust.get(key) for key in trust_metrics.TRUST_KEYS}


def job_trust_summary(*, job: Job) -> dict[str, Any]:
    """Per classifier x explainer the mean of each metric, explainers ranked per classifier by their mean position."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for classifier, explainer, trust in job.explanations.values_list("classifier", "explainer", "trust"):
        groups[(classifier, explainer)].append(trust or {})
    table = []
    for (classifier, explainer), trusts in groups.items():
        means = {}
        for key in trust_metrics.TRUST_KEYS:
            values = [t[key] for t in trusts if t.get(key) is not None]
            means[key] = round(float(np.mean(values)), 4) if values else None
        if means["sanity"] is not None:  # the explainer fails the check when its mean map barely changes
            means["sanity_fails"] = bool(means["sanity"] > image_trust.SANITY_THRESHOLD)
        table.append({"classifier": classifier, "explainer": explainer, "n_rows": len(trusts), **means})
    order = {key: i for i, key in enumerate(job.classifiers)}
    by_classifier: dict[str, list[dict]] = defaultdict(list)
    for entry in table:
        by_classifier[entry["classifier"]].append(entry)
    ranked = []
    for classifier in sorted(by_classifier, key=lambda c: order.get(c, 99)):
        entries = by_classifier[classifier]
        positions: dict[str, list[float]] = defaultdict(list)
        for key in trust_metrics.TRUST_KEYS:
            scored = [e for e in entries if e[key] is not None]
            if len(scored) < 2:
                continue
            sign = 1.0 if key in trust_metrics.LOWER_IS_BETTER else -1.0
            ranks = rankdata([sign * e[key] for e in scored])
            for e, rank in zip(scored, ranks):
                positions[e["explainer"]].append(float(rank))
        for e in entries:
            e["mean_position"] = round(float(np.mean(positions[e["explainer"]])), 3) if positions[e["explainer"]] else None
        entries.sort(key=lambda e: (e["mean_position"] is None, e["mean_position"] or 0, e["explainer"]))
        rank = 0
        for e in entries:
            # Ranked only on scores measured for at least two of its explainers: no scores, no place (null).
            rank += e["mean_position"] is not None
            e["rank"] = rank if e["mean_position"] is not None else None
            e["classifier_label"] = classifier_label_of(classifier)
            e["explainer_label"] = explainer_label(e["explainer"])
        ranked.extend(entries)
    representative = {run.classifier: {**run.metrics["representative_rows"],
                                       "label": classifier_label_of(run.classifier)}
                      for run in job.runs.all() if (run.metrics or {}).get("representative_rows")}
    measured = [key for key in trust_metrics.TRUST_KEYS if any(e[key] is not None for e in ranked)]
    return {"table": ranked, "metrics": metric_descriptions(job), "representative_rows": representative,
            "measured": measured, "roar": roar_summary(job=job),
            "whatif_features": sorted(set(job.whatifs.values_list("feature", flat=True)))}


def row_comparison(*, job: Job, row: int, explanations: list[Explanation]) -> dict[str, Any]:
    """Which features each classifier x explainer puts in its top 5 for this row, and where they agree.

    A feature is "agreed" when at least half of the explanations name it, "disputed" when only one does.
    """
    tables = EXPLAINER_VARIANTS["tabular"]
    columns = [{"classifier": e.classifier, "explainer": e.explainer,
                "label": f"{classifier_label_of(e.classifier)} · {explainer_label(e.explainer)}",
                "top": [name for name, _ in (e.trust or {}).get("top_features", [])],
                "signs": {name: value for name, value in (e.trust or {}).get("top_features", [])}}
               for e in explanations if (e.trust or {}).get("top_features")]
    counts: Counter[str] = Counter(name for column in columns for name in column["top"])
    features = sorted(counts, key=lambda name: (-counts[name], min(c["top"].index(name) for c in columns if name in c["top"])))
    signed = [column["explainer"] not in tables or tables[column["explainer"]].result_kind == "attributions"
              for column in columns]  # a rule's features have no direction
    lines = []
    for name in features:
        cells = []
        for column, has_sign in zip(columns, signed):
            if name in column["top"]:
                value = column["signs"][name]
                direction = ("towards" if value > 0 else "away") if has_sign else ""
                cells.append({"rank": column["top"].index(name) + 1, "direction": direction})
            else:
                cells.append(None)
        share = counts[name] / len(columns)
        lines.append({"feature": name, "count": counts[name], "cells": cells,
                      "verdict": "agreed" if share >= 0.5 and len(columns) > 1 else "disputed" if counts[name] == 1 and len(columns) > 2 else ""})
    return {"columns": columns, "lines": lines, "n": len(columns)}


# ---------------------------------------------------------------- the ZIP


# ---------------------------------------------------------------- the row page


def trust_display(trust: dict | None, readings: dict[str, str] | None = None) -> list[dict[str, str]]:
    """The measured metrics of one explanation as the page shows them: name, number, which way is better, reading."""
    trust = trust or {}
    readings = readings or trust_metrics.METRIC_READINGS
    out = []
    for key in trust_metrics.TRUST_KEYS:
        value = trust.get(key)
        if value is None:
            continue
        text = additivity_text(value) if key == "additivity_error" else percent(value) if key in trust_metrics.SHARE_KEYS \
            else f"{value:.2f}"
        if key == "sanity" and trust.get("sanity_fails"):
            text += " (fails)"
        out.append({"key": key, "label": trust_metrics.METRIC_LABELS[key], "value": text,
                    "better": "lower is better" if key in trust_metrics.LOWER_IS_BETTER else "higher is better",
                    "reading": readings[key]})
    for key, reason in (trust.get("not_measured") or {}).items():  # image jobs say why a score is empty
        if key in trust_metrics.METRIC_LABELS and trust.get(key) is None:
            out.append({"key": key, "label": trust_metrics.METRIC_LABELS[key], "value": "not measured", "better": "",
                        "reading": f"Not measured: {reason}."})
    return out


def row_insight(*, job: Job, row: int, explanations: list[Explanation], feature: str = "") -> dict[str, Any]:
    """What the row page adds to the explanations: trust per explanation (set on each as ``trust_rows``), the
    comparison of their top features, and the what-if curves (``feature`` asks for one more: a worker draws it,
    ``whatif_drawing`` names those still being drawn)."""
    for e in explanations:
        e.trust_rows = trust_display(e.trust, metric_readings(job))
    error = ""
    if feature:
        try:
            whatif_get(job=job, row=row, feature=feature)
        except ApplicationError as exc:
            error = exc.message
    whatifs = list(whatif_list(job=job, row=row, ready_only=False))
    drawing = [w.feature for w in whatifs if w.status == WhatIfStatus.DRAWING]
    failed = [w for w in whatifs if w.status == WhatIfStatus.FAILED]
    if failed and not error:
        error = f"The curve for {failed[0].feature} could not be drawn: {failed[0].error}"
    return {"comparison": row_comparison(job=job, row=row, explanations=explanations),
            "whatifs": [w for w in whatifs if w.status == WhatIfStatus.READY], "whatif_drawing": drawing,
            "whatif_error": error, "whatif_choices": [f for f in job.schema.get("features", [])
                                                      if f not in {w.feature for w in whatifs if w.status != WhatIfStatus.FAILED}]}
