"""One classifier of a job on text or images: the phases of ``services.job_classifier_run`` with their own plug-ins.

Data (messages or images instead of an encoded table), training (TF-IDF pipelines, or the CNN with a stage
per epoch), the text/image variant of each explainer, their plots, and global views. Claiming the run,
resolving rows, saving explanations and packing the ZIP are the services' own functions, so retries and
cancellation behave exactly as for tables.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from datasets.selectors import dataset_frame_load
from explainer_site.exceptions import ApplicationError
from explanations.job_data import JobData, image_data_from_frame, text_data_from_frame
from explanations.ml.engine import stop_check
from explanations.ml.explainers import EXPLAINER_VARIANTS
from explanations.ml.explainers.base import ExplainerError
from explanations.ml.image_models import attribution_npy, cnn_fit, image_predictor_build
from explanations.ml.lazy import lazy
from explanations.ml.modalities import explainer_for, schema_modality
from explanations.ml.model_files import model_file_load
from explanations.ml.text_models import text_classifier_fit, text_predictor_build
from explanations.models import Explanation, Job, ModelRun, ModelRunStatus
from uploaded_models.job_classifiers import classifier_spec_of, uploaded_model_job_load
from uploaded_models.selectors import uploaded_model_id

# Imported where models are fitted and plots drawn (workers), not when the web process loads this module.
attribution_class_maps = lazy("explanations.ml.plots.image", "attribution_class_maps")
image_comparison_plot = lazy("explanations.ml.plots.image", "image_comparison_plot")
importance_bar_plot = lazy("explanations.ml.plots.shap", "importance_bar_plot")

COMPARISON_ROWS_MAX = 6


@dataclass(frozen=True)
class Modality:
    """What differs between texts and images; everything else is the tabular job's machinery (each explainer
    names its own plot and alt text)."""

    name: str
    data_build: Callable[..., JobData]
    predictor_build: Callable[..., Any]
    summaries: Callable[..., None]


def text_fit(*, job: Job, run: ModelRun, data: JobData, params: dict, on_epoch=None):
    X, y = data.X[data.train_idx], data.y[data.train_idx]
    return text_classifier_fit(run.classifier, params, data.space, X, y, seed=job.params["seed"])


def image_fit(*, job: Job, run: ModelRun, data: JobData, params: dict, on_epoch=None):
    return cnn_fit(params, data.X[data.train_idx], data.y[data.train_idx], seed=job.params["seed"], on_epoch=on_epoch)


def uploaded_fit(*, job: Job, run: ModelRun, data: JobData, params: dict, on_epoch=None):
    """An uploaded network is loaded (and checked against the job's images), not trained."""
    return uploaded_model_job_load(key=run.classifier, data=data, dataset=job.dataset)


def modality_classifier_run(*, job: Job, run: ModelRun) -> None:
    """Called by ``job_classifier_run`` once the run is claimed; stops quietly when the job was cancelled."""
    from explanations.services import job_finish_if_done, job_stage_set

    modality = MODALITIES[schema_modality(job.schema)]
    spec = classifier_spec_of(run.classifier, modality.name)
    seed, test_size = job.params["seed"], job.params["test_size"]
    job_stage_set(job.pk, f"Preparing the {modality.name}s for {spec.label}", run_id=run.pk)
    frame = dataset_frame_load(dataset=job.dataset)
    data = modality.data_build(frame, schema=job.schema, test_size=test_size, seed=seed)
    base = train_units(job=job, run=run)
    model = modality_model_train(job=job, run=run, data=data, modality=modality, base=base)
    if model is None:
        return
    predictor = modality.predictor_build(run.classifier, model, data.space)
    if not run.rows:
        from explanations.services import rows_resolve

        run.rows = rows_resolve(job=job, data=data, predict=lambda X: predictor.predict_proba(X).argmax(axis=1))
        run.units_total = base + 1 + len(run.rows) * len(job.explainers)
        run.units_done = base
        run.save(update_fields=["rows", "units_total", "units_done"])
    for key in job.explainers:
        if not modality_rows_explain(job=job, run=run, data=data, predictor=predictor, key=key, modality=modality,
                                     base=base):
            return
    if not job_stage_set(job.pk, f"Drawing the global views for {spec.label}", run_id=run.pk):
        return
    modality.summaries(job=job, run=run, data=data)
    ModelRun.objects.filter(pk=run.pk).update(status=ModelRunStatus.DONE, units_done=run.units_total)
    job_finish_if_done(job_id=job.pk)


def train_units(*, job: Job, run: ModelRun) -> int:
    """Progress units for training: one per CNN epoch (the bar moves while it learns), else one."""
    return int(job.params["classifiers"].get(run.classifier, {}).get("epochs", 1)) if run.classifier == "cnn" else 1


def modality_model_train(*, job: Job, run: ModelRun, data: JobData, modality: Modality, base: int):
    from explanations.services import job_stage_set, model_run_record

    if run.status != ModelRunStatus.PENDING and run.model_file:
        with run.model_file.open("rb") as handle:
            return model_file_load(handle)  # a file our own worker wrote, never an upload
    spec = classifier_spec_of(run.classifier, modality.name)
    rows_guess = rows_estimate(job=job, n_test=len(data.test_idx))
    ModelRun.objects.filter(pk=run.pk).update(units_total=base + 1 + rows_guess * len(job.explainers), units_done=0)
    if not job_stage_set(job.pk, f"Training {spec.label}", run_id=run.pk):
        return None

    def on_epoch(epoch: int, epochs: int) -> None:
        ModelRun.objects.filter(pk=run.pk).update(units_done=epoch)
        job_stage_set(job.pk, f"Training CNN: epoch {epoch} of {epochs}", run_id=run.pk)

    started = time.perf_counter()
    fit = uploaded_fit if uploaded_model_id(run.classifier) is not None else image_fit if modality.name == "image" else text_fit
    model = fit(job=job, run=run, data=data, params=job.params["classifiers"].get(run.classifier, {}), on_epoch=on_epoch)
    fit_seconds = time.perf_counter() - started
    predictor = modality.predictor_build(run.classifier, model, data.space)
    model_run_record(job=job, run=run, data=data, model=model, predictor=predictor, fit_seconds=fit_seconds)
    if modality.name == "image":
        run.metrics["device"] = str(getattr(model, "device_", "cpu"))
        ModelRun.objects.filter(pk=run.pk).update(metrics=run.metrics)
    return model


def rows_estimate(*, job: Job, n_test: int) -> int:
    spec = job.rows_spec
    if "ids" in spec:
        return len(spec["ids"])
    if spec.get("all_test"):
        return n_test
    return min(int(spec.get("random") or spec.get("misclassified") or 1), n_test)


def modality_rows_explain(*, job: Job, run: ModelRun, data: JobData, predictor, key: str, modality: Modality,
                          base: int) -> bool:
    """Explain the run's rows not yet done with one explainer; False when the job stopped meanwhile."""
    from explanations.services import batches, explanation_save, job_stage_set, model_run_yield_if_due

    done = set(Explanation.objects.filter(job=job, classifier=run.classifier, explainer=key).values_list("row", flat=True))
    pending = [r for r in run.rows if r not in done]
    if not pending:
        return True
    explainer_cls = explainer_for(key, modality.name)
    spec = classifier_spec_of(run.classifier, modality.name)
    seed = job.params["seed"]
    try:
        explainer = explainer_cls(**job.params.get(key, {})).fit(data.background(seed), predictor, data.space, seed=seed)
    except ExplainerError as exc:
        raise ApplicationError(f"{explainer_cls.label} could not be set up for {spec.label}: {exc}") from exc
    total, noun = len(run.rows), "image" if modality.name == "image" else "message"
    for batch in batches(pending, settings.EXPLAINER_BATCH_SIZE):
        position = total - len(pending) + 1
        last = position + len(batch) - 1
        span = f"{noun} {position}" if position == last else f"{noun}s {position}–{last}"
        if not job_stage_set(job.pk, f"Explaining {span} of {total} with {explainer_cls.label} — {spec.label}",
                             run_id=run.pk):
            return False
        if model_run_yield_if_due(job=job, run=run):  # another user's work is waiting: it resumes from here
            return False
        started = time.perf_counter()
        results = explainer.explain(data.X[batch], batch)
        seconds = (time.perf_counter() - started) / max(len(batch), 1)
        for result in results:
            stop_check()  # drawing a row's plots takes a while: a cancel stops between rows
            if getattr(result, "attribution", None) is not None:
                attribution_store(job=job, run=run, result=result)
            explanation_save(job=job, run=run, data=data, result=result, seconds=seconds)
        pending = pending[len(batch):]
        finished = Explanation.objects.filter(job=job, classifier=run.classifier).count()
        ModelRun.objects.filter(pk=run.pk).update(units_done=base + finished)
    return True


def attribution_store(*, job: Job, run: ModelRun, result) -> None:
    """The full map as ``.npy`` (storage API); ``data`` names it as the ZIP does, ``meta`` keeps where it is stored."""
    name = f"{run.classifier}_{result.method}_row{result.row}.npy"
    path = f"jobs/{job.pk}/attributions/{name}"
    if default_storage.exists(path):  # a retried batch writes the same map again
        default_storage.delete(path)
    stored = default_storage.save(path, ContentFile(attribution_npy(result.attribution)))
    result.data["attribution_file"] = f"attributions/{name}"
    result.meta["attribution_file"] = stored


def attribution_load(explanation: Explanation) -> np.ndarray | None:
    path = explanation.meta.get("attribution_file")
    if not path or not default_storage.exists(path):
        return None
    with default_storage.open(path, "rb") as handle:
        return np.load(handle, allow_pickle=False)


def text_summaries(*, job: Job, run: ModelRun, data: JobData) -> None:
    """Mean |weight| per word over the explained messages, for each explainer that weighs words (LIME, SHAP):
    which words the model leans on."""
    from explanations.services import plot_save

    spec = classifier_spec_of(run.classifier, "text")
    importance: dict[str, dict[str, float]] = {}
    weighers = [(key, explainer.label) for key, explainer in EXPLAINER_VARIANTS["text"].items()
                if explainer.result_kind == "attributions"]
    for method, name in weighers:
        rows = list(Explanation.objects.filter(job=job, classifier=run.classifier, explainer=method))
        if not rows:
            continue
        totals: dict[str, float] = defaultdict(float)
        for e in rows:
            for word, weight in e.data.get("words", []):
                totals[word.lower()] += abs(float(weight))
        words = sorted(totals, key=lambda w: -totals[w])[:20]
        values = np.array([totals[w] / len(rows) for w in words])
        importance[method] = {w: float(v) for w, v in zip(words, values)}
        if not words:
            continue
        title = f"Words {name} finds most influential — {spec.label}"
        plot_save(job=job, classifier=run.classifier, kind=f"{method}_importance",
                  figure=importance_bar_plot(words, values, title=title, xlabel=f"mean |{name} weight|",
                                             subtitle=f"mean |weight| over {len(rows)} explained messages"),
                  title=title, alt=f"{name} global importance: the most influential words are {', '.join(words[:3])}.")
    if importance:
        ModelRun.objects.filter(pk=run.pk).update(metrics={**run.metrics, "importance": importance})


def image_summaries(*, job: Job, run: ModelRun, data: JobData) -> None:
    """Every explainer side by side on the same explained images (towards the predicted class)."""
    from explanations.services import plot_save

    rows = run.rows[:COMPARISON_ROWS_MAX]
    by_method: dict[str, dict[int, Explanation]] = defaultdict(dict)
    for e in Explanation.objects.filter(job=job, classifier=run.classifier, row__in=rows):
        by_method[e.explainer][e.row] = e
    methods = [key for key in job.explainers if by_method.get(key)]
    if not rows or not methods:
        return
    maps: dict[str, list[np.ndarray | None]] = {}
    for key in methods:
        maps[explainer_for(key, "image").label] = [comparison_map(by_method[key].get(row)) for row in rows]
    first = {row: next(by_method[key][row] for key in methods if row in by_method[key]) for row in rows}
    labels = [f"row {row}: {first[row].predicted}" + (f" (true {first[row].true_label})" if first[row].true_label else "")
              for row in rows]
    spec = classifier_spec_of(run.classifier, "image")
    title = f"Every explainer on the same images — {spec.label}"
    plot_save(job=job, classifier=run.classifier, kind="image_comparison",
              figure=image_comparison_plot([data.X[row] for row in rows], labels, maps, title=title,
                                           subtitle="towards the predicted class: blue for, orange against"),
              title=title, alt=f"A grid of {len(rows)} explained images, one column per explainer ({', '.join(maps)}), "
                               "each showing which pixels push towards the predicted class.")


def comparison_map(explanation: Explanation | None) -> np.ndarray | None:
    if explanation is None:
        return None
    attribution = attribution_load(explanation)
    if attribution is None:
        return None
    return attribution_class_maps(attribution, explanation.data)[0][1]


MODALITIES: dict[str, Modality] = {
    "text": Modality("text", text_data_from_frame, text_predictor_build, text_summaries),
    "image": Modality("image", image_data_from_frame, image_predictor_build, image_summaries),
}
