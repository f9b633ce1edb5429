"""What the steps store: a trained model's metrics, file and confusion matrix, each row's explanation with its
picture, and plots. Called by ``explanations.job_steps`` and the modules it runs; imports no other service."""

from __future__ import annotations

import io

import joblib
import numpy as np
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction

from explanations.job_data import JobData
from explanations.ml.explainers.base import ExplanationResult
from explanations.ml.lazy import lazy
from explanations.ml.modalities import explainer_for, schema_modality
from explanations.models import Explanation, Job, ModelRun, ModelRunStatus, Plot
from uploaded_models.job_classifiers import classifier_spec_of
from uploaded_models.selectors import uploaded_model_id

# Imported where models are fitted and plots drawn (workers), not when the web process loads this module.
accuracy_score = lazy("sklearn.metrics", "accuracy_score")
confusion_matrix = lazy("sklearn.metrics", "confusion_matrix")
f1_score = lazy("sklearn.metrics", "f1_score")
explanation_alt = lazy("explanations.ml.plots", "explanation_alt")
explanation_figure = lazy("explanations.ml.plots", "explanation_figure")
figure_render = lazy("explanations.ml.plots", "figure_render")
confusion_matrix_plot = lazy("explanations.ml.plots.metrics", "confusion_matrix_plot")


def model_run_record(*, job: Job, run: ModelRun, data: JobData, model, predictor, fit_seconds: float) -> None:
    """Test metrics, the model file and the confusion matrix of a freshly trained model; the run becomes TRAINED."""
    spec = classifier_spec_of(run.classifier)
    y_test = data.y[data.test_idx]
    y_pred = predictor.predict_proba(data.X[data.test_idx]).argmax(axis=1)
    labels = list(range(len(data.space.class_names)))
    matrix = confusion_matrix(y_test, y_pred, labels=labels)
    run.metrics = {
        "accuracy": float(accuracy_score(y_test, y_pred)),
        "f1_macro": float(f1_score(y_test, y_pred, average="macro", labels=sorted(set(y_test) | set(y_pred)), zero_division=0)),
        "n_train": int(len(data.train_idx)),
        "n_test": int(len(data.test_idx)),
        "fit_seconds": round(fit_seconds, 3),
        "confusion_matrix": matrix.tolist(),
        "notes": data.notes,
    }
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    run.model_file.save(f"{job.pk}/{run.classifier}.joblib", ContentFile(buffer.getvalue()), save=False)
    figure = confusion_matrix_plot(matrix, data.space.class_names, title=f"Confusion matrix — {spec.label}",
                                   subtitle=f"{len(data.test_idx)} test rows · accuracy {run.metrics['accuracy']:.1%}")
    plot_save(job=job, classifier=run.classifier, kind="confusion_matrix", figure=figure,
              title=f"Confusion matrix — {spec.label}",
              alt=f"Confusion matrix of {spec.label} on {len(data.test_idx)} test rows; accuracy {run.metrics['accuracy']:.1%}.")
    run.status = ModelRunStatus.TRAINED
    run.seconds = fit_seconds
    run.save()


def explanation_title(*, data: JobData, row: int, predicted: str, classifier_label: str, explainer_label: str) -> str:
    name = data.row_names[row]
    return f"Why row {row}{f' ({name})' if name else ''} is predicted {predicted} — {classifier_label}, {explainer_label}"


def explanation_picture(*, job: Job, run: ModelRun, data: JobData, result: ExplanationResult,
                        trust: dict | None = None) -> tuple[str, bytes, bytes, str]:
    """Title, PNG, SVG and alt text of one row's explanation, as its explainer draws it (with what trust adds)."""
    space = data.space
    predicted = space.class_names[result.predicted]
    spec, explainer_cls = classifier_spec_of(run.classifier), explainer_for(result.method, schema_modality(job.schema))
    label = spec.label if uploaded_model_id(run.classifier) is not None else spec.label.lower()  # a name as typed
    title = explanation_title(data=data, row=result.row, predicted=predicted, classifier_label=label,
                              explainer_label=explainer_cls.label)
    subtitle = " · ".join(f"{k.replace('_', ' ')} {v}" for k, v in job.params.get(result.method, {}).items())
    figure = explanation_figure(explainer_cls, result, space, title=title, subtitle=subtitle, trust=trust)
    png, svg = figure_render(figure)
    return title, png, svg, explanation_alt(explainer_cls, result, space)


def explanation_texts(*, job: Job, result: ExplanationResult) -> dict[str, str]:
    """What the web side shows of an explanation in words (the CSV's cell), written by its explainer here, on the
    worker, so that a download never loads the explainer (and its libraries) into the web process."""
    return {"summary_text": explainer_for(result.method, schema_modality(job.schema)).summary_text(result.data)}


def explanation_save(*, job: Job, run: ModelRun, data: JobData, result: ExplanationResult, seconds: float,
                     trust: dict | None = None) -> None:
    """Store one row's explanation with the picture and alt text its explainer names (for this kind of data).

    Once: a redelivered batch finds the row saved and stores nothing (the table's unique row per explainer)."""
    if Explanation.objects.filter(job=job, classifier=run.classifier, explainer=result.method, row=result.row).exists():
        return
    space = data.space
    title, png, svg, alt = explanation_picture(job=job, run=run, data=data, result=result, trust=trust)
    with transaction.atomic():
        try:
            with transaction.atomic():
                explanation = Explanation.objects.create(
                    job=job, classifier=run.classifier, explainer=result.method, row=result.row,
                    row_name=data.row_names[result.row][:300], in_train=bool(np.isin(result.row, data.train_idx)),
                    true_label=data.row_label(result.row), predicted=space.class_names[result.predicted],
                    probabilities={name: round(float(p), 6) for name, p in zip(space.class_names, result.probabilities)},
                    data=dict(result.data), meta={**result.meta, **explanation_texts(job=job, result=result)},
                    trust=trust or {}, seconds=round(seconds, 4))
        except IntegrityError:
            return  # saved meanwhile by another delivery of this batch
        plot_files_save(job=job, classifier=run.classifier, kind=result.method, png=png, svg=svg, title=title,
                        alt=alt, explanation=explanation)


def plot_save(*, job: Job, classifier: str, kind: str, figure, title: str, alt: str) -> Plot:
    png, svg = figure_render(figure)
    Plot.objects.filter(job=job, classifier=classifier, kind=kind, explanation=None).delete()
    return plot_files_save(job=job, classifier=classifier, kind=kind, png=png, svg=svg, title=title, alt=alt)


def plot_files_save(*, job: Job, classifier: str, kind: str, png: bytes, svg: bytes, title: str, alt: str,
                    explanation: Explanation | None = None, stem: str = "") -> Plot:
    stem = stem or f"{job.pk}/plots/{classifier}_{kind}" + (f"_row{explanation.row}" if explanation else "")
    plot = Plot(job=job, explanation=explanation, classifier=classifier, kind=kind, title=title[:400], alt=alt)
    plot.png.save(f"{stem}.png", ContentFile(png), save=False)
    plot.svg.save(f"{stem}.svg", ContentFile(svg), save=False)
    plot.save()
    return plot
