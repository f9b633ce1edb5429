"""Trust scores, comparisons and what-if curves for a job's results: the jobs-side use of ``trust`` and ``whatif``.

Writes run inside a job's tasks (``explanations.services`` calls them at the right moments); the reads build
what the row page, the results page, the API and the ZIP show.
"""

from __future__ import annotations

import io
import json
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from datasets.ingest import formula_safe
from explainer_site.exceptions import ApplicationError
from explanations.job_data import JobData, job_data_build
from explanations.ml import trust as trust_metrics
from explanations.ml import whatif as whatif_math
from explanations.ml.classifiers import CLASSIFIERS, predictor_build
from explanations.ml.engine import stop_check
from explanations.ml.explainers import EXPLAINER_VARIANTS, EXPLAINERS, explainer_for
from explanations.ml.explainers.base import BaseExplainer, ExplanationResult, Predictor, row_seed
from explanations.ml.lazy import lazy
from explanations.ml.model_files import model_file_load
from explanations.ml.representative_rows import representative_rows_pick
from explanations.models import Explanation, Job, ModelRun, ModelRunStatus, Plot, WhatIf, WhatIfStatus

# Imported where models are fitted and plots drawn (workers), not when the web process loads this module.
rankdata = lazy("scipy.stats", "rankdata")
figure_render = lazy("explanations.ml.plots", "figure_render")
percent = lazy("explanations.ml.plots.style", "percent")
whatif_plot = lazy("explanations.ml.plots.whatif", "whatif_plot")
whatif_alt_text = lazy("explanations.ml.plots.whatif", "whatif_alt_text")

logger = logging.getLogger(__name__)

WHATIF_FEATURES_DEFAULT = 3
WHATIF_FEATURES_MAX = 10
WHATIF_ROWS_MAX = 50  # rows drawn while the job runs; others are drawn when first asked for
REPRESENTATIVE_ROWS = 5


# ---------------------------------------------------------------- parameters


def insight_params_clean(*, params: dict, features: list[str]) -> dict:
    """Take ``trust`` and ``whatif`` out of a job's raw params and validate them (``ApplicationError`` names the field)."""
    requested = params.pop("trust", None) or {}
    if not isinstance(requested, dict):
        raise ApplicationError("Trust settings must be an object such as {\"stability_runs\": 5}.", {"field": "trust"})
    try:
        trust = trust_metrics.trust_params_clean({"stability_runs": settings.EXPLAINER_TRUST_STABILITY_RUNS, **requested})
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


def trust_meter_build(*, job: Job, data: JobData, predictor: Predictor, explainer_key: str) -> TrustMeter:
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
    by_row: dict[int, list[tuple[Explanation, np.ndarray]]] = defaultdict(list)
    for e in explanations:
        by_row[e.row].append((e, tables[e.explainer].attributions(e.data, names)))
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


def job_models_load(*, job: Job, data: JobData) -> dict[str, Predictor]:
    """The fitted model of every trained classifier, in the job's order (files our own worker wrote)."""
    predictors = {}
    for run in sorted(job.runs.all(), key=lambda r: job.classifiers.index(r.classifier) if r.classifier in job.classifiers else 99):
        if run.status == ModelRunStatus.PENDING or not run.model_file:
            continue
        with run.model_file.open("rb") as handle:
            predictors[run.classifier] = predictor_build(run.classifier, model_file_load(handle), data.space)
    return predictors


def whatif_features(*, job: Job, data: JobData) -> list[str]:
    """The job's ``whatif.features``, else the top 3 by importance averaged over classifiers (SHAP, else LIME),
    else the features the explanations name most often."""
    chosen = ((job.params.get("whatif") or {}).get("features")) or []
    if chosen:
        return [f for f in chosen if f in data.space.feature_names]
    names = data.space.feature_names
    scores: Counter[str] = Counter()
    for run in job.runs.all():
        importance = (run.metrics or {}).get("importance") or {}
        values = importance.get("shap") or importance.get("lime") or {}
        total = sum(abs(v) for v in values.values()) or 1.0
        for name, value in values.items():
            scores[name] += abs(value) / total
    if not scores:
        for trust in Explanation.objects.filter(job=job).values_list("trust", flat=True):
            for position, (name, _) in enumerate((trust or {}).get("top_features", [])):
                scores[name] += trust_metrics.TOP_K - position
    ranked = [name for name, _ in sorted(scores.items(), key=lambda kv: (-kv[1], names.index(kv[0]) if kv[0] in names else 0))
              if name in names]
    return (ranked or names)[:WHATIF_FEATURES_DEFAULT]


def job_whatif_build(*, job: Job) -> None:
    """What-if curves for the chosen features: partial dependence over the test rows, and one overlay per explained row."""
    try:
        job_whatif_draw(job=job)
    except SoftTimeLimitExceeded:
        raise
    except Exception:  # the explanations are done and worth delivering; the job page simply shows no what-if
        logger.exception("job %s: what-if curves failed", job.pk)


def job_whatif_draw(*, job: Job) -> None:
    from explanations.services import job_stage_set

    if job.schema.get("text") or job.schema.get("image_shape"):  # sweeping a feature means a table's column
        return
    data = job_data_build(dataset=job.dataset, schema=job.schema, test_size=job.params["test_size"], seed=job.params["seed"])
    predictors = job_models_load(job=job, data=data)
    if not predictors:
        return
    features = whatif_features(job=job, data=data)
    rows = sorted({int(r) for run in job.runs.all() for r in run.rows})[:WHATIF_ROWS_MAX]
    done = set(WhatIf.objects.filter(job=job).values_list("row", "feature"))
    for feature in features:
        if (None, feature) not in done:
            whatif_save(job=job, data=data, predictors=predictors, row=None, feature=feature)
    for position, row in enumerate(rows, start=1):
        if not job_stage_set(job.pk, f"Drawing what-if curves for row {row} ({position} of {len(rows)})"):
            return
        for feature in features:
            if (row, feature) not in done:
                whatif_save(job=job, data=data, predictors=predictors, row=row, feature=feature)


def whatif_save(*, job: Job, data: JobData, predictors: dict[str, Predictor], row: int | None, feature: str) -> WhatIf | None:
    """Compute, draw and store one what-if; None when another task stored the same one first."""
    from explanations.services import plot_files_save

    space = data.space
    j = space.feature_names.index(feature)
    # Issue 17 items 7 and 9 (plots): "(missing)" only where the data had it, and the job's one reference class.
    grid = whatif_math.feature_grid(space, j, data.X[data.train_idx, j], current=None if row is None else data.X[row, j])
    labels = whatif_math.grid_labels(space, j, grid)
    class_index = data.reference_class
    categorical = j in space.categories
    if row is None:
        X = data.X[data.test_idx]
        probas = {key: whatif_math.partial_dependence(p.predict_proba, X, j, grid, seed=job.params["seed"])
                  for key, p in predictors.items()}
        title = f"Partial dependence on {feature} — probability of {space.class_names[class_index]}"
        subtitle = (f"averaged over {min(len(X), whatif_math.PD_ROWS_MAX)} test rows · "
                    f"one {'marker' if categorical else 'line'} per classifier")
        current = None
    else:
        x = data.X[row]
        probas = {key: whatif_math.ice_curve(p.predict_proba, x, j, grid) for key, p in predictors.items()}
        name = data.row_names[row]
        title = f"What if {feature} were different? Row {row}{f' ({name})' if name else ''} — probability of {space.class_names[class_index]}"
        subtitle = (f"everything else kept as in row {row} · {'marked' if categorical else 'dotted line'}: "
                    f"its {feature} ({space.value_text(j, x[j])})")
        current = float(x[j])
    class_name = space.class_names[class_index]
    lines = {CLASSIFIERS[key].label if key in CLASSIFIERS else key: proba[:, class_index] for key, proba in probas.items()}
    figure = whatif_plot(grid, labels, lines, feature=feature, class_name=class_name, title=title, subtitle=subtitle,
                         current=current, categorical=categorical)
    png, svg = figure_render(figure)
    alt = whatif_alt_text(feature=feature, class_name=class_name, labels=labels, lines=lines, row=row,
                          categorical=categorical)
    subject = f"row{row}_{feature}" if row is not None else feature
    with transaction.atomic():
        plot = plot_files_save(job=job, classifier="", kind="whatif" if row is not None else "partial_dependence",
                               png=png, svg=svg, title=title, alt=alt)
        Plot.objects.filter(pk=plot.pk).update(subject=subject[:200])
        fields = {"grid": [float(v) for v in grid], "grid_labels": labels, "plot": plot, "status": WhatIfStatus.READY,
                  "error": "",
                  "curves": {key: whatif_math.curves_by_class(proba, space.class_names) for key, proba in probas.items()}}
        requested = WhatIf.objects.filter(job=job, row=row, feature=feature).exclude(status=WhatIfStatus.READY)
        if requested.update(**fields):  # asked for on a page: fill in the request
            return WhatIf.objects.get(job=job, row=row, feature=feature)
        try:
            with transaction.atomic():
                return WhatIf.objects.create(job=job, row=row, feature=feature, **fields)
        except IntegrityError:  # two tasks finishing at once both drew it
            plot.delete()
            return None


WHATIF_REDRAW_AFTER = timedelta(minutes=2)  # a request "drawing" or "failed" for longer than this is queued again


def whatif_get(*, job: Job, row: int | None, feature: str) -> WhatIf:
    """A stored what-if; one not drawn yet (the row was explained but the feature not chosen) is queued for a
    worker and comes back ``DRAWING`` (no model is ever loaded in a web request). Asking again while it is
    drawn queues nothing more; a failed one answers its reason, and is tried again when asked for
    ``WHATIF_REDRAW_AFTER`` later."""
    features = job.schema.get("features", [])
    if feature not in features:  # first: whatever was typed reaches the database only once known to be a feature
        raise ApplicationError(f"“{feature[:100]}” is not a feature of this job; pick one of {', '.join(features[:20])}.",
                               {"field": "feature"}, status=404)
    found = WhatIf.objects.filter(job=job, row=row, feature=feature).select_related("plot").first()
    now = timezone.now()
    # Drawing for longer than that: its message was lost. Failed that long ago: asking again tries again (a poll
    # right after a failure sees the failure, not a new attempt).
    if found and (found.status == WhatIfStatus.READY or (found.requested_at or now) >= now - WHATIF_REDRAW_AFTER):
        return found
    if found is None:
        if row is not None and not Explanation.objects.filter(job=job, row=row).exists():
            raise ApplicationError(f"Row {row} was not explained in this job.", {"field": "row"}, status=404)
        if job.schema.get("text") or job.schema.get("image_shape"):
            raise ApplicationError("What-if curves sweep a table's column; this job explains texts or images.", status=409)
        if not job.runs.exclude(status=ModelRunStatus.PENDING).exists():
            raise ApplicationError("No classifier of this job is trained yet; what-if curves come once one is.", status=409)
        try:
            with transaction.atomic():
                found = WhatIf.objects.create(job=job, row=row, feature=feature, status=WhatIfStatus.DRAWING, requested_at=now)
        except IntegrityError:  # asked twice at once: the other request queued it
            return WhatIf.objects.select_related("plot").get(job=job, row=row, feature=feature)
    else:  # asked again after it failed, or its message was lost: draw it again
        WhatIf.objects.filter(pk=found.pk).update(requested_at=now, status=WhatIfStatus.DRAWING, error="")
        found.refresh_from_db()
    whatif_id = found.pk
    transaction.on_commit(lambda: whatif_enqueue(job=job, whatif_id=whatif_id))
    return found


def whatif_enqueue(*, job: Job, whatif_id: int) -> None:
    from explanations.tasks import whatif_draw as whatif_draw_task

    queues = {CLASSIFIERS[key].queue for key in job.classifiers if key in CLASSIFIERS}
    try:
        whatif_draw_task.apply_async(args=[whatif_id], queue="gpu" if "gpu" in queues else "celery")
    except Exception:  # the broker is away: say so on the what-if; asking again later queues it again
        logger.exception("what-if %s could not be queued", whatif_id)
        WhatIf.objects.filter(pk=whatif_id, status=WhatIfStatus.DRAWING).update(
            status=WhatIfStatus.FAILED, error="The work queue is unavailable right now; ask for this curve again in a minute.")


def whatif_draw(*, whatif_id: int) -> None:
    """On a worker: compute and draw a what-if that was asked for after the job ran."""
    whatif = WhatIf.objects.select_related("job", "job__dataset").filter(pk=whatif_id).first()
    if whatif is None or whatif.status == WhatIfStatus.READY:  # deleted meanwhile, or a redelivered message
        return
    job = whatif.job
    data = job_data_build(dataset=job.dataset, schema=job.schema, test_size=job.params["test_size"], seed=job.params["seed"])
    predictors = job_models_load(job=job, data=data)
    if not predictors:
        whatif_fail(whatif_id=whatif_id, reason="No trained model of this job is left to draw the curve with.")
        return
    whatif_save(job=job, data=data, predictors=predictors, row=whatif.row, feature=whatif.feature)


def whatif_fail(*, whatif_id: int, reason: str) -> None:
    WhatIf.objects.filter(pk=whatif_id).exclude(status=WhatIfStatus.READY).update(status=WhatIfStatus.FAILED, error=reason)


def whatif_list(*, job: Job, row: int | None = None, partial_dependence: bool = False, ready_only: bool = True):
    items = WhatIf.objects.filter(job=job).select_related("plot")
    if ready_only:
        items = items.filter(status=WhatIfStatus.READY)
    return items.filter(row__isnull=True) if partial_dependence else items.filter(row=row)


# ---------------------------------------------------------------- reads: summary and comparison


def metric_descriptions() -> list[dict[str, str]]:
    return [{"key": key, "label": trust_metrics.METRIC_LABELS[key], "reading": trust_metrics.METRIC_READINGS[key],
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
            e["classifier_label"] = CLASSIFIERS[classifier].label if classifier in CLASSIFIERS else classifier
            e["explainer_label"] = EXPLAINERS[e["explainer"]].label if e["explainer"] in EXPLAINERS else e["explainer"]
        ranked.extend(entries)
    representative = {run.classifier: {**run.metrics["representative_rows"],
                                       "label": CLASSIFIERS[run.classifier].label if run.classifier in CLASSIFIERS else run.classifier}
                      for run in job.runs.all() if (run.metrics or {}).get("representative_rows")}
    measured = [key for key in trust_metrics.TRUST_KEYS if any(e[key] is not None for e in ranked)]
    return {"table": ranked, "metrics": metric_descriptions(), "representative_rows": representative,
            "measured": measured,
            "whatif_features": sorted(set(job.whatifs.values_list("feature", flat=True)))}


def row_comparison(*, job: Job, row: int, explanations: list[Explanation]) -> dict[str, Any]:
    """Which features each classifier x explainer puts in its top 5 for this row, and where they agree.

    A feature is "agreed" when at least half of the explanations name it, "disputed" when only one does.
    """
    tables = EXPLAINER_VARIANTS["tabular"]
    columns = [{"classifier": e.classifier, "explainer": e.explainer,
                "label": f"{CLASSIFIERS[e.classifier].label if e.classifier in CLASSIFIERS else e.classifier} · "
                         f"{EXPLAINERS[e.explainer].label if e.explainer in EXPLAINERS else e.explainer}",
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


def insight_archive_files(*, job: Job) -> dict[str, str]:
    """Extra files for the job's ZIP: the trust table (JSON with readings, and CSV) and every what-if curve."""
    from explanations.exports import plot_archive_name

    summary = job_trust_summary(job=job)
    columns = ["classifier", "explainer", "rank", "n_rows", *trust_metrics.TRUST_KEYS, "mean_position"]
    buffer = io.StringIO()
    formula_safe(pd.DataFrame([{c: e.get(c) for c in columns} for e in summary["table"]], columns=columns)).to_csv(buffer, index=False)
    whatifs = [{"row": w.row, "feature": w.feature, "grid": w.grid, "grid_labels": w.grid_labels, "curves": w.curves,
                "plots": [{"kind": w.plot.kind, "png": plot_archive_name(w.plot, "png"), "svg": plot_archive_name(w.plot, "svg")}]
                if w.plot else []}
               for w in WhatIf.objects.filter(job=job, status=WhatIfStatus.READY).select_related("plot", "plot__explanation")]
    return {"trust_summary.json": json_text(summary), "trust_summary.csv": buffer.getvalue(), "whatif.json": json_text(whatifs)}


def json_text(value: Any) -> str:
    return json.dumps(value, indent=2, default=str)


# ---------------------------------------------------------------- the row page


def trust_display(trust: dict | None) -> list[dict[str, str]]:
    """The measured metrics of one explanation as the page shows them: name, number, which way is better, reading."""
    trust = trust or {}
    out = []
    for key in trust_metrics.TRUST_KEYS:
        value = trust.get(key)
        if value is None:
            continue
        text = f"{value:.1e}" if key == "additivity_error" else percent(value) if key in trust_metrics.SHARE_KEYS \
            else f"{value:.2f}"
        out.append({"key": key, "label": trust_metrics.METRIC_LABELS[key], "value": text,
                    "better": "lower is better" if key in trust_metrics.LOWER_IS_BETTER else "higher is better",
                    "reading": trust_metrics.METRIC_READINGS[key]})
    return out


def row_insight(*, job: Job, row: int, explanations: list[Explanation], feature: str = "") -> dict[str, Any]:
    """What the row page adds to the explanations: trust per explanation (set on each as ``trust_rows``), the
    comparison of their top features, and the what-if curves (``feature`` asks for one more: a worker draws it,
    ``whatif_drawing`` names those still being drawn)."""
    for e in explanations:
        e.trust_rows = trust_display(e.trust)
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
