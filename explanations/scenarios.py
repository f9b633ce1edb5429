"""The what-if editor: a row of a job with some feature values changed, predicted and explained again on a worker.

The web process only validates and records the request (``scenario_create``); a worker of the ``interactive``
queue loads the job's models, predicts the edited row with every classifier and explains it with the job's
attribution explainers (LIME, SHAP: those whose result is a weight per feature), as the job explained its rows.
No model is ever loaded in a web request.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from datasets.ingest import value_text
from explainer_site.exceptions import ApplicationError
from explanations.exports import scenario_record  # noqa: F401  (the API reads the record here too)
from explanations.insights import trust_record
from explanations.job_data import JobData, job_data_build
from explanations.ml.catalogue import explainer_entry
from explanations.ml.explainers import explainer_for
from explanations.ml.explainers.base import number_parse, value_shown
from explanations.ml.lazy import lazy
from explanations.ml.modalities import schema_modality
from explanations.ml.tabular import MISSING, categories_sort, category_text
from explanations.models import Explanation, Job, ModelRunStatus, Plot, Scenario, ScenarioStatus
from explanations.services.results_save import plot_files_save
from explanations.whatifs import job_models_load
from uploaded_models.job_classifiers import classifier_label_of
from uploaded_models.selectors import uploaded_model_id

# Imported where models are fitted and plots drawn (workers), not when the web process loads this module.
explanation_alt = lazy("explanations.ml.plots", "explanation_alt")
explanation_figure = lazy("explanations.ml.plots", "explanation_figure")
figure_render = lazy("explanations.ml.plots", "figure_render")

logger = logging.getLogger(__name__)

SCENARIO_QUEUE = "interactive"
VALUE_TEXT_MAX = 300  # characters of one category value; longer is no category anyone typed
FIELDS_MAX = 200  # the editor's inputs (and the changes one scenario may hold)
SCENARIO_STUCK_AFTER = timedelta(minutes=10)  # "being computed" for longer: its message was lost


# ---------------------------------------------------------------- the editor's inputs


@dataclass
class ScenarioField:
    """One input of the editor, shaped by its column: a select of the categories seen, or a number box with the
    range seen (``low``..``high``) and the range accepted (``lowest``..``highest``: one range-width beyond)."""

    name: str
    index: int
    kind: str  # "category" | "number"
    current: str = ""
    choices: list[str] = field(default_factory=list)
    low: float | None = None
    high: float | None = None
    lowest: float | None = None
    highest: float | None = None
    whole: bool = False
    shown: str | None = None  # what the input shows: the row's value, or what was typed when the form came back

    @property
    def value(self) -> str:
        return self.current if self.shown is None else self.shown

    @property
    def step(self) -> str:
        return "1" if self.whole else "any"

    @property
    def seen_text(self) -> str:
        if self.kind == "category":
            return f"{len(self.choices)} value{'s' if len(self.choices) != 1 else ''} seen"
        return f"seen: {number_text(self.low)} to {number_text(self.high)}" if self.low is not None else "no values seen"


def number_text(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.4g}"


def scenario_fields(*, job: Job, current: dict[str, str] | None = None) -> list[ScenarioField]:
    """The editor's inputs for a table job, from the dataset's columns (read from its Parquet file, no model)."""
    schema = job.schema
    features = schema.get("features", [])[:FIELDS_MAX]
    categorical = set(schema.get("categorical", []))
    with job.dataset.data_file.open("rb") as handle:
        frame = pd.read_parquet(handle, columns=features)
    current = current or {}
    fields = []
    for index, name in enumerate(features):
        column = frame[name]
        if name in categorical:
            choices = categories_sort({category_text(v) for v in pd.unique(column.dropna())} - {MISSING})
            fields.append(ScenarioField(name=name, index=index, kind="category", current=current.get(name, ""),
                                        choices=choices))
            continue
        values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        values = values[np.isfinite(values)]
        entry = ScenarioField(name=name, index=index, kind="number", current=current.get(name, ""))
        if len(values):
            low, high = float(values.min()), float(values.max())
            margin = max(high - low, abs(high), 1.0)
            entry.low, entry.high, entry.lowest, entry.highest = low, high, low - margin, high + margin
            entry.whole = bool(np.all(values == np.round(values)))
        fields.append(entry)
    return fields


def scenario_changes_clean(*, fields: list[ScenarioField], changes: Any) -> dict[str, float | str]:
    """``{feature: value}`` checked against the inputs: a known feature, a number (finite, within the accepted
    range) or a category seen in the data. ``ApplicationError`` (400) names the field and what to send."""
    if not isinstance(changes, dict):
        raise ApplicationError("“changes” must be an object of feature → new value, such as {\"age\": 40}.",
                               {"field": "changes"})
    if not changes:
        raise ApplicationError("Change at least one value of the row.", {"field": "changes"})
    by_name = {f.name: f for f in fields}
    if len(changes) > len(by_name):
        raise ApplicationError(f"A scenario changes at most the row's {len(by_name)} features.", {"field": "changes"})
    clean: dict[str, float | str] = {}
    for name, value in changes.items():
        spec = by_name.get(name) if isinstance(name, str) else None
        if spec is None:
            shown = str(name)[:60]
            raise ApplicationError(f"“{shown}” is not a feature of this job; change one of "
                                   f"{', '.join(list(by_name)[:20])}.", {"field": "changes"})
        clean[name] = category_clean(spec, value) if spec.kind == "category" else number_clean(spec, value)
    return clean


def category_clean(spec: ScenarioField, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float) or isinstance(value, str) and len(value) > VALUE_TEXT_MAX:
        raise ApplicationError(f"{spec.name} takes one of its categories as text, such as "
                               f"“{spec.choices[0] if spec.choices else 'a value'}”.", {"field": spec.name})
    text = value.strip() if isinstance(value, str) else category_text(value)
    if text not in spec.choices:
        raise ApplicationError(f"“{text[:60]}” was never seen in {spec.name}; pick one of "
                               f"{', '.join(spec.choices[:15])}{' …' if len(spec.choices) > 15 else ''}.", {"field": spec.name})
    return text


def number_clean(spec: ScenarioField, value: Any) -> float:
    try:
        number = float(number_parse(value, whole=False))
    except ValueError:
        raise ApplicationError(f"{spec.name} takes a finite number, such as {number_text(spec.low) or 1}; "
                               f"got {value_shown(value)[:60]}.", {"field": spec.name}) from None
    if spec.lowest is None or not spec.lowest <= number <= spec.highest:
        raise ApplicationError(f"{spec.name} = {number_text(number)} is far outside the values seen "
                               f"({number_text(spec.low)} to {number_text(spec.high)}); pick a value between "
                               f"{number_text(spec.lowest)} and {number_text(spec.highest)}.", {"field": spec.name})
    return number


def scenario_form_changes(*, fields: list[ScenarioField], post) -> dict[str, Any]:
    """The editor's form (``change_<index>`` per input) as ``changes``: only the values that differ from the row's."""
    changes: dict[str, Any] = {}
    for spec in fields:
        raw = post.get(f"change_{spec.index}")
        if raw is None:
            continue
        raw = raw.strip()
        if spec.kind == "category":
            if raw and raw != spec.current:
                changes[spec.name] = raw
            continue
        if raw == "":
            continue
        try:
            number = number_parse(raw.replace(",", ""), whole=False)
        except ValueError:
            changes[spec.name] = raw  # said back as "takes a finite number"
            continue
        try:
            same = spec.current != "" and float(spec.current.replace(",", "")) == number
        except ValueError:
            same = False
        if not same:
            changes[spec.name] = number
    return changes


# ---------------------------------------------------------------- the request (web process)


def scenario_create(*, job: Job, row: int, changes: Any, fields: list[ScenarioField] | None = None) -> Scenario:
    """Record a scenario and queue it for a worker once committed; 400/404/409/429 say what was wrong."""
    if schema_modality(job.schema) != "tabular":
        raise ApplicationError("The what-if editor changes a table's values; this job explains texts or images.", status=409)
    if not Explanation.objects.filter(job=job, row=row).exists():
        raise ApplicationError(f"Row {row} was not explained in this job; pick one of its explained rows.",
                               {"field": "row"}, status=404)
    if not job.runs.exclude(status=ModelRunStatus.PENDING).exclude(model_file="").exists():
        raise ApplicationError("No classifier of this job is trained yet; try the what-if editor once one is.", status=409)
    clean = scenario_changes_clean(fields=fields if fields is not None else scenario_fields(job=job), changes=changes)
    scenario_quota_check(job=job)
    scenario = Scenario(job=job, row=row, changes=clean)
    scenario.full_clean()
    scenario.save()
    scenario_id = scenario.pk
    transaction.on_commit(lambda: scenario_enqueue(scenario_id=scenario_id))
    return scenario


def scenario_quota_check(*, job: Job) -> None:
    per_job, per_hour = settings.EXPLAINER_SCENARIOS_PER_JOB, settings.EXPLAINER_SCENARIOS_PER_HOUR
    if per_job and Scenario.objects.filter(job=job).count() >= per_job:
        raise ApplicationError(f"This job holds {per_job} scenarios already, as many as one job may; "
                               "run the job again (Rerun) to try more.", {"field": "quota"}, status=429)
    since = timezone.now() - timedelta(hours=1)
    if per_hour and Scenario.objects.filter(job__owner_id=job.owner_id, created_at__gte=since).count() >= per_hour:
        raise ApplicationError(f"You tried {per_hour} scenarios in the last hour, as many as one account may; "
                               "wait a few minutes and try again.", {"field": "quota"}, status=429)


def scenario_enqueue(*, scenario_id: int) -> None:
    from explanations.tasks import scenario_compute as scenario_compute_task

    try:
        scenario_compute_task.apply_async(args=[scenario_id], queue=SCENARIO_QUEUE)
    except Exception:  # the broker is away: the scenario says so, and trying again later queues a new one
        logger.exception("scenario %s could not be queued", scenario_id)
        scenario_fail(scenario_id=scenario_id, reason="The work queue is unavailable right now; try again in a minute.")


def scenario_get(*, job: Job, scenario_id) -> Scenario:
    from django.http import Http404

    try:
        return Scenario.objects.get(job=job, pk=scenario_id)
    except (Scenario.DoesNotExist, ValueError, TypeError):
        raise Http404("No such scenario.") from None


def scenario_list(*, job: Job, row: int | None = None):
    items = Scenario.objects.filter(job=job).prefetch_related("plots")
    return items.filter(row=row) if row is not None else items


# ---------------------------------------------------------------- the work (worker)


def scenario_compute(*, scenario_id: int) -> None:
    """On a worker: predict the edited row with every classifier and explain it with the job's attribution explainers."""
    scenario = Scenario.objects.select_related("job", "job__dataset").filter(pk=scenario_id).first()
    if scenario is None or scenario.status != ScenarioStatus.COMPUTING:  # deleted, or a redelivered message
        return
    job = scenario.job
    seed = job.params["seed"]
    data = job_data_build(dataset=job.dataset, schema=job.schema, test_size=job.params["test_size"], seed=seed)
    predictors = job_models_load(job=job, data=data)
    if not predictors:
        scenario_fail(scenario_id=scenario_id, reason="No trained model of this job is left to predict the edited row with.")
        return
    x = scenario_row_encode(data=data, row=scenario.row, changes=scenario.changes)
    names = data.space.class_names
    predictions = {}
    for key, predictor in predictors.items():
        proba = predictor.predict_proba(x[None, :])[0]
        predictions[key] = {"predicted": names[int(np.argmax(proba))],
                            "probabilities": {name: round(float(p), 6) for name, p in zip(names, proba)}}
    records = []
    keys = [k for k in job.explainers if explainer_entry(k, "tabular").result_kind == "attributions"]
    for classifier, predictor in predictors.items():
        for key in keys:
            records.append(scenario_explain(scenario=scenario, data=data, x=x, classifier=classifier,
                                            predictor=predictor, explainer_key=key))
    Scenario.objects.filter(pk=scenario_id, status=ScenarioStatus.COMPUTING).update(
        status=ScenarioStatus.READY, predictions=predictions, explanations=records, error="", finished_at=timezone.now())


def scenario_row_encode(*, data: JobData, row: int, changes: dict) -> np.ndarray:
    """The row as the models see it, with the changes (a category seen only outside the training rows is read as
    the training encoding's "missing")."""
    space = data.space
    x = np.array(data.X[row], dtype=float)
    for name, value in changes.items():
        j = space.feature_names.index(name)
        if j in space.categories:
            categories = space.categories[j]
            x[j] = categories.index(value) if value in categories else len(categories) - 1
        else:
            x[j] = float(value)
    return x


def scenario_explain(*, scenario: Scenario, data: JobData, x: np.ndarray, classifier: str, predictor,
                     explainer_key: str) -> dict:
    """One fresh explanation of the edited row, drawn as the job's are, as an API explanation record."""
    job, space, seed = scenario.job, data.space, scenario.job.params["seed"]
    explainer_cls = explainer_for(explainer_key, "tabular")
    started = time.perf_counter()
    explainer = explainer_cls(**job.params.get(explainer_key, {})).fit(data.background(seed), predictor, space, seed=seed)
    result = explainer.explain(x[None, :], [scenario.row])[0]
    seconds = time.perf_counter() - started
    predicted = space.class_names[result.predicted]
    label = classifier_label_of(classifier)
    title = (f"Why the edited row {scenario.row} (scenario {scenario.pk}) is predicted {predicted} — "
             f"{label if uploaded_model_id(classifier) is not None else label.lower()}, {explainer_cls.label}")
    changed = ", ".join(f"{k} = {value_text(v)}" for k, v in scenario.changes.items())
    figure = explanation_figure(explainer_cls, result, space, title=title, subtitle=f"changed: {changed}"[:200])
    png, svg = figure_render(figure)
    with transaction.atomic():  # never seen as a job-wide plot, not even for a moment
        plot = plot_files_save(job=job, classifier=classifier, kind=result.method, png=png, svg=svg, title=title,
                               alt=explanation_alt(explainer_cls, result, space))
        Plot.objects.filter(pk=plot.pk).update(scenario=scenario, subject=f"scenario{scenario.pk}_row{scenario.row}")
    payload = dict(result.data)
    if isinstance(payload.get("label"), int) and 0 <= payload["label"] < len(space.class_names):
        payload["label"] = space.class_names[payload["label"]]
    return {"classifier": classifier, "classifier_label": label, "explainer": result.method, "row": scenario.row,
            "row_name": data.row_names[scenario.row][:300], "in_train": bool(np.isin(scenario.row, data.train_idx)),
            "true_label": data.row_label(scenario.row), "predicted": predicted,
            "probabilities": {name: round(float(p), 6) for name, p in zip(space.class_names, result.probabilities)},
            "data": json.loads(json.dumps(payload, default=float)), "seconds": round(seconds, 4),
            "trust": trust_record(None), "plot_ids": [plot.pk]}


def scenario_fail(*, scenario_id: int, reason: str) -> None:
    Scenario.objects.filter(pk=scenario_id).exclude(status=ScenarioStatus.READY).update(
        status=ScenarioStatus.FAILED, error=reason[:2000], finished_at=timezone.now())


# ---------------------------------------------------------------- what the API, the page and the ZIP show


def scenario_is_stuck(scenario: Scenario) -> bool:
    return scenario.status == ScenarioStatus.COMPUTING and scenario.created_at < timezone.now() - SCENARIO_STUCK_AFTER


def plot_caption(plot: Plot) -> str:
    classifier = classifier_label_of(plot.classifier)
    return f"{classifier} · {explainer_entry(plot.kind, 'tabular').label}, for the edited row"


def scenario_cards(*, job: Job, row: int, original: dict[str, str], row_values: dict[str, str]) -> list[dict]:
    """The row page's list of scenarios: what changed (from → to), each classifier's new answer beside its answer
    for the row as it is (``original``: classifier → predicted)."""
    cards = []
    for scenario in scenario_list(job=job, row=row):
        lines = []
        for key, p in (scenario.predictions or {}).items():
            label = classifier_label_of(key)
            lines.append({"label": label, "predicted": p["predicted"],
                          "confidence": max(p["probabilities"].values(), default=0.0),
                          "before": original.get(key, ""), "changed": original.get(key, p["predicted"]) != p["predicted"]})
        changes = [{"feature": k, "before": row_values.get(k, ""), "after": value_text(v) if isinstance(v, float) else v}
                   for k, v in scenario.changes.items()]
        cards.append({"scenario": scenario, "changes": changes, "lines": lines,
                      "plots": [{"plot": p, "caption": plot_caption(p)} for p in scenario.plots.all()],
                      "stuck": scenario_is_stuck(scenario)})
    return cards


def scenario_editor(*, job: Job, row: int, row_values: dict[str, str], predicted: dict[str, str], post=None) -> dict:
    """What the row page needs for the editor; with ``post`` (its form) a new scenario, as ``created``, or the
    sentence of what was wrong (``editor_error``, ``editor_field``) with the values as typed kept in the inputs."""
    fields = scenario_fields(job=job, current=row_values)
    labels = [explainer_entry(k, "tabular").label for k in job.explainers
              if explainer_entry(k, "tabular").result_kind == "attributions"]
    context: dict[str, Any] = {"editor_fields": fields, "editor_error": "", "editor_field": "",
                               "editor_explainers": " and ".join(labels)}
    if post is not None:
        try:
            context["created"] = scenario_create(job=job, row=row, changes=scenario_form_changes(fields=fields, post=post),
                                                 fields=fields)
            return context
        except ApplicationError as exc:
            context["editor_error"], context["editor_field"] = exc.message, exc.extra.get("field", "")
            for spec in fields:
                spec.shown = post.get(f"change_{spec.index}", spec.current)
    context["scenarios"] = scenario_cards(job=job, row=row, original=predicted, row_values=row_values)
    context["scenarios_computing"] = any(c["scenario"].status == ScenarioStatus.COMPUTING and not c["stuck"]
                                         for c in context["scenarios"])
    return context
