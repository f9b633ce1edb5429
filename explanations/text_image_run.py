"""What texts and images plug into a job's steps (``explanations.job_steps.MODALITIES``): training (TF-IDF
pipelines, or the CNN with a stage per epoch), attribution maps kept as files, and their global views. Every
other phase (rows, batches, saving, retries, cancelling) is the one runner's, exactly as for tables.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from explanations.job_data import JobData
from explanations.ml.explainers import EXPLAINER_VARIANTS
from explanations.ml.image_models import attribution_npy, cnn_fit
from explanations.ml.lazy import lazy
from explanations.ml.modalities import explainer_for
from explanations.ml.text_models import text_classifier_fit
from explanations.models import Explanation, Job, ModelRun
from explanations.services.results_save import plot_save
from explanations.summaries import rows_scope
from uploaded_models.job_classifiers import classifier_spec_of

# Imported where models are fitted and plots drawn (workers), not when the web process loads this module.
attribution_class_maps = lazy("explanations.ml.plots.image", "attribution_class_maps")
image_comparison_plot = lazy("explanations.ml.plots.image", "image_comparison_plot")
importance_bar_plot = lazy("explanations.ml.plots.shap", "importance_bar_plot")

COMPARISON_ROWS_MAX = 6


def text_fit(*, job: Job, run: ModelRun, data: JobData, params: dict, on_epoch=None):
    X, y = data.X[data.train_idx], data.y[data.train_idx]
    return text_classifier_fit(run.classifier, params, data.space, X, y, seed=job.params["seed"])


def image_fit(*, job: Job, run: ModelRun, data: JobData, params: dict, on_epoch=None):
    return cnn_fit(params, data.X[data.train_idx], data.y[data.train_idx], seed=job.params["seed"], on_epoch=on_epoch)


def train_units(*, job: Job, run: ModelRun) -> int:
    """Progress units for training: one per CNN epoch (the bar moves while it learns), else one."""
    return int(job.params["classifiers"].get(run.classifier, {}).get("epochs", 1)) if run.classifier == "cnn" else 1


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
        scope = rows_scope(len(rows), len(rows))  # issue 17 item 11: a few messages are not "the model"
        title = (f"Words {name} finds most influential — {spec.label}" if scope.is_global else
                 f"Words {name} weighs most in the {len(rows)} explained message{'s' if len(rows) != 1 else ''} — {spec.label}")
        plot_save(job=job, classifier=run.classifier, kind=f"{method}_importance",
                  figure=importance_bar_plot(words, values, title=title, xlabel=f"mean |{name} weight|",
                                             subtitle=f"mean |weight| over {len(rows)} explained messages"),
                  title=title, alt=f"{name} {'global ' if scope.is_global else ''}importance over {len(rows)} explained "
                                   f"messages: the most influential words are {', '.join(words[:3])}.")
    if importance:
        ModelRun.objects.filter(pk=run.pk).update(metrics={**run.metrics, "importance": importance})


def image_summaries(*, job: Job, run: ModelRun, data: JobData) -> None:
    """Every explainer side by side on the same explained images (towards the predicted class)."""
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
