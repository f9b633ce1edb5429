"""Inside an image job's CNN, asked for after the job ran: feature visualisations of a layer's channels, one
image's neuron groups, and an adversarial example towards a class a person picks.

The web process only checks and records the request (``network_view_create``: every bad input is a 400/404
with a sentence that says what to send); a worker of the ``gpu`` queue (where the CNN's batches run) loads
the job's trained CNN as the job's steps do (``job_steps.job_data`` and ``run_predictor``), computes with
``explanations.ml.network_inside``, draws with ``explanations.ml.plots.network`` and always leaves the view
``ready`` or ``failed`` with a reason. No model is ever loaded in a web request.
"""

from __future__ import annotations

import logging
import math
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from explainer_site.exceptions import ApplicationError
from explanations.ml.catalogue import classifier_for
from explanations.ml.modalities import schema_modality
from explanations.models import (
    Explanation,
    Job,
    JobStatus,
    ModelRunStatus,
    NetworkView,
    NetworkViewKind,
    NetworkViewStatus,
    Plot,
)

logger = logging.getLogger(__name__)

NETWORK_QUEUE = "gpu"  # where torch works: the CNN's training and explanation batches
NETWORK_CLASSIFIER = "cnn"  # the network this app trains (an uploaded network's layers are not offered yet)
# Cost limits of one request (the same as explanations.ml.network_inside, which checks them again on the worker).
CHANNELS_MAX = 16
GROUPS_MIN, GROUPS_MAX, GROUPS_DEFAULT = 2, 10, 4
ITERATIONS_MAX = 100
FEATURE_STEPS = 128  # gradient-ascent steps of one feature visualisation
ADVERSARIAL_GROUPS = 4  # neuron groups drawn for the original and the adversarial image
ADVERSARIAL_EXPLAINER = "integrated_gradients"
ADVERSARIAL_EXPLAINER_PARAMS = {"steps": 32}
VIEW_STUCK_AFTER = timedelta(minutes=10)  # "being drawn" for longer: its message was lost, asking again redraws


# ---------------------------------------------------------------- what the network offers (web process, no torch)


def network_check(*, job: Job) -> None:
    """400 unless the job is a finished image job whose CNN was trained."""
    if schema_modality(job.schema) != "image":
        raise ApplicationError("Looking inside the network is for image jobs; this job explains a table or texts.",
                               {"field": "job"})
    if job.status != JobStatus.SUCCEEDED:
        raise ApplicationError(f"This job is {job.get_status_display().lower()}; looking inside its network works once "
                               "it has finished.", {"field": "job"})
    if NETWORK_CLASSIFIER not in job.classifiers or not job.runs.filter(classifier=NETWORK_CLASSIFIER).exclude(
            status=ModelRunStatus.PENDING).exclude(model_file="").exists():
        raise ApplicationError("Looking inside works on the convolutional network this app trains; this job has no "
                               "trained CNN. Run a job with the Convolutional network classifier.", {"field": "job"})


def network_layers(*, job: Job) -> list[dict[str, Any]]:
    """The CNN's convolution layers as ``torch_cnn.cnn_module_build`` makes them (checked against the module on a
    worker by the tests): name, channels and the size of the map each channel draws."""
    height, width = (int(s) for s in job.schema["image_shape"][:2])
    spec = classifier_for(NETWORK_CLASSIFIER, "image")
    default = next(p.default for p in spec.params if p.name == "channels")
    channels = int((job.params.get("classifiers") or {}).get(NETWORK_CLASSIFIER, {}).get("channels", default))
    return [
        {"name": "conv1", "label": "Convolution block 1", "channels": channels, "height": height, "width": width,
         "description": "the first layer: strokes, edges and spots of the image"},
        {"name": "conv2", "label": "Convolution block 2", "channels": 2 * channels, "height": height // 2,
         "width": width // 2, "description": "the second layer: parts of shapes, built from the first layer's"},
    ]


def network_classes(job: Job) -> list[str]:
    return [str(name) for name in job.schema["class_names"].values()]


def explained_rows(job: Job) -> list[int]:
    return sorted(set(Explanation.objects.filter(job=job, classifier=NETWORK_CLASSIFIER).values_list("row", flat=True)))


def network_describe(*, job: Job) -> dict[str, Any]:
    """``GET /api/jobs/{id}/network/``: the layers and channels, the classes and rows one may ask about, the limits."""
    network_check(job=job)
    return {"classifier": NETWORK_CLASSIFIER, "classifier_label": classifier_for(NETWORK_CLASSIFIER, "image").label,
            "layers": network_layers(job=job), "classes": network_classes(job), "rows": explained_rows(job),
            "limits": {"channels_max": CHANNELS_MAX, "groups_min": GROUPS_MIN, "groups_max": GROUPS_MAX,
                       "iterations_max": ITERATIONS_MAX, "epsilon": "above 0, at most 1", "alpha": "above 0, at most 1"},
            "defaults": {"groups": GROUPS_DEFAULT, "epsilon": 0.05, "alpha": 0.05, "iterations": ITERATIONS_MAX}}


# ---------------------------------------------------------------- checking a request


def whole_number(value: Any, *, field: str, example: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ApplicationError(f"“{field}” takes a whole number, such as {example}.", {"field": field})
    try:
        number = float(value)
    except ValueError:
        raise ApplicationError(f"“{field}” takes a whole number, such as {example}; got “{str(value)[:40]}”.",
                               {"field": field}) from None
    if not math.isfinite(number) or number != int(number):
        raise ApplicationError(f"“{field}” takes a whole number, such as {example}; got {str(value)[:40]}.", {"field": field})
    return int(number)


def fraction(value: Any, *, field: str, symbol: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ApplicationError(f"{symbol} (“{field}”) takes a number above 0 and at most 1, such as 0.05.", {"field": field})
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or not 0 < number <= 1:
        raise ApplicationError(f"{symbol} (“{field}”) is a fraction of the pixel range: above 0 and at most 1, such as "
                               f"0.05; got {str(value)[:40]}.", {"field": field})
    return number


def layer_clean(job: Job, value: Any) -> dict[str, Any]:
    layers = network_layers(job=job)
    for layer in layers:
        if value == layer["name"]:
            return layer
    shown = str(value)[:40] if value is not None else "nothing"
    raise ApplicationError(f"The network has no layer “{shown}”; pick one of {', '.join(lay['name'] for lay in layers)}.",
                           {"field": "layer"})


def row_clean(job: Job, value: Any) -> int:
    row = whole_number(value, field="row", example=0)
    rows = explained_rows(job)
    if row not in rows:
        listed = ", ".join(str(r) for r in rows[:15]) + (" …" if len(rows) > 15 else "")
        raise ApplicationError(f"Row {row} was not explained in this job; pick one of its explained rows: {listed}.",
                               {"field": "row"}, status=404)
    return row


def visualise_params_clean(job: Job, body: dict) -> dict[str, Any]:
    layer = layer_clean(job, body.get("layer"))
    channels = body.get("channels")
    if isinstance(channels, int | str) and not isinstance(channels, bool):
        channels = [channels]
    if not isinstance(channels, list) or not channels:
        raise ApplicationError(f"“channels” lists the channels to draw, such as [0, 1, 2] (up to {CHANNELS_MAX}).",
                               {"field": "channels"})
    if len(channels) > CHANNELS_MAX:
        raise ApplicationError(f"Ask for at most {CHANNELS_MAX} channels at once; got {len(channels)}.", {"field": "channels"})
    clean = []
    for value in channels:
        channel = whole_number(value, field="channels", example=0)
        if not 0 <= channel < layer["channels"]:
            raise ApplicationError(f"{layer['name']} has channels 0 to {layer['channels'] - 1}; there is no channel {channel}.",
                                   {"field": "channels"})
        if channel not in clean:
            clean.append(channel)
    return {"layer": layer["name"], "channels": clean}


def groups_params_clean(job: Job, body: dict) -> dict[str, Any]:
    row = row_clean(job, body.get("row"))
    layer = layer_clean(job, body.get("layer"))
    groups = whole_number(body.get("groups", GROUPS_DEFAULT), field="groups", example=GROUPS_DEFAULT)
    if not GROUPS_MIN <= groups <= GROUPS_MAX:
        raise ApplicationError(f"Neuron groups go from {GROUPS_MIN} to {GROUPS_MAX}; got {groups}.", {"field": "groups"})
    if groups > layer["channels"]:
        raise ApplicationError(f"{layer['name']} has {layer['channels']} channels: at most {layer['channels']} groups.",
                               {"field": "groups"})
    return {"row": row, "layer": layer["name"], "groups": groups}


def target_clean(job: Job, value: Any) -> str:
    classes = network_classes(job)
    text = str(value).strip() if isinstance(value, int | str) and not isinstance(value, bool) else None
    if text in classes:
        return text
    listed = ", ".join(classes[:20]) + (" …" if len(classes) > 20 else "")
    shown = f"“{str(value)[:40]}”" if value is not None else "Nothing"
    raise ApplicationError(f"{shown} is not a class of this job; the target is one of {listed}.", {"field": "target"})


def adversarial_params_clean(job: Job, body: dict) -> dict[str, Any]:
    row = row_clean(job, body.get("row"))
    target = target_clean(job, body.get("target"))
    epsilon = fraction(body.get("epsilon", 0.05), field="epsilon", symbol="ε")
    alpha = fraction(body.get("alpha", 0.05), field="alpha", symbol="α")
    iterations = whole_number(body.get("iterations", ITERATIONS_MAX), field="iterations", example=ITERATIONS_MAX)
    if not 1 <= iterations <= ITERATIONS_MAX:
        raise ApplicationError(f"Iterations go from 1 to {ITERATIONS_MAX}; got {iterations}.", {"field": "iterations"})
    return {"row": row, "target": target, "epsilon": epsilon, "alpha": alpha, "iterations": iterations}


PARAMS_CLEAN = {NetworkViewKind.VISUALISE: visualise_params_clean, NetworkViewKind.GROUPS: groups_params_clean,
                NetworkViewKind.ADVERSARIAL: adversarial_params_clean}


# ---------------------------------------------------------------- the request (web process)


def network_view_create(*, job: Job, kind: str, body: Any) -> tuple[NetworkView, bool]:
    """Check and record a request, queued for a worker once committed; ``(view, reused)``: an identical request
    that is ready (or being drawn) is answered by that view instead of drawing again."""
    network_check(job=job)
    if not isinstance(body, dict):
        raise ApplicationError("Send a JSON object, such as {\"layer\": \"conv1\", \"channels\": [0, 1]}.", {"field": "body"})
    params = PARAMS_CLEAN[kind](job, body)
    since = timezone.now() - VIEW_STUCK_AFTER
    same = NetworkView.objects.filter(job=job, kind=kind, params=params).exclude(status=NetworkViewStatus.FAILED)
    for view in same:
        if view.status == NetworkViewStatus.READY or view.created_at >= since:
            return view, True
    network_quota_check(job=job)
    view = NetworkView(job=job, kind=kind, params=params)
    view.full_clean()
    view.save()
    view_id = view.pk
    transaction.on_commit(lambda: network_view_enqueue(view_id=view_id))
    return view, False


def network_quota_check(*, job: Job) -> None:
    per_hour = settings.EXPLAINER_NETWORK_VIEWS_PER_HOUR
    since = timezone.now() - timedelta(hours=1)
    if per_hour and NetworkView.objects.filter(job__owner_id=job.owner_id, created_at__gte=since).count() >= per_hour:
        raise ApplicationError(f"You asked for {per_hour} looks inside networks in the last hour, as many as one account "
                               "may; wait a few minutes and try again.", {"field": "quota"}, status=429)


def network_view_enqueue(*, view_id: int) -> None:
    from explanations.tasks import network_view_draw as network_view_task

    try:
        network_view_task.apply_async(args=[view_id], queue=NETWORK_QUEUE)
    except Exception:  # the broker is away: the view says so, and asking again queues a new one
        logger.exception("network view %s could not be queued", view_id)
        network_view_fail(view_id=view_id, reason="The work queue is unavailable right now; try again in a minute.")


def network_view_get(*, job: Job, view_id) -> NetworkView:
    from django.http import Http404

    try:
        return NetworkView.objects.get(job=job, pk=view_id)
    except (NetworkView.DoesNotExist, ValueError, TypeError):
        raise Http404("No such view.") from None


def network_view_list(*, job: Job, kind: str | None = None, row: int | None = None):
    views = NetworkView.objects.filter(job=job).prefetch_related("plots")
    if kind:
        views = views.filter(kind=kind)
    return views.filter(params__row=row) if row is not None else views


def network_view_is_stuck(view: NetworkView) -> bool:
    return view.status == NetworkViewStatus.DRAWING and view.created_at < timezone.now() - VIEW_STUCK_AFTER


def network_view_record(view: NetworkView, plot_link) -> dict[str, Any]:
    """The API's record: the request, its status, and once ready the result's fields and its plots."""
    record = {"id": view.pk, "job": view.job_id, "kind": view.kind, "status": view.status, "error": view.error or None,
              "params": view.params, "created_at": view.created_at, "finished_at": view.finished_at}
    if view.status == NetworkViewStatus.READY:
        record.update(view.result)
    record["plots"] = [{"kind": p.kind, "title": p.title, "alt": p.alt, "png": plot_link(p, "png"),
                        "svg": plot_link(p, "svg")} for p in view.plots.all()] if view.status == NetworkViewStatus.READY else []
    return record


def network_view_fail(*, view_id: int, reason: str) -> None:
    NetworkView.objects.filter(pk=view_id).exclude(status=NetworkViewStatus.READY).update(
        status=NetworkViewStatus.FAILED, error=reason[:2000], finished_at=timezone.now())


# ---------------------------------------------------------------- the work (worker)


def network_view_draw(*, view_id: int) -> None:
    """On a worker: load the job's CNN and compute, draw and store the view; a redelivered message is a no-op."""
    from explanations.job_steps import job_data, run_predictor

    view = NetworkView.objects.select_related("job", "job__dataset").filter(pk=view_id).first()
    if view is None or view.status != NetworkViewStatus.DRAWING:
        return
    job = view.job
    run = job.runs.filter(classifier=NETWORK_CLASSIFIER).exclude(model_file="").first()
    if run is None:
        network_view_fail(view_id=view_id, reason="This job's CNN is no longer stored; run the job again to look inside it.")
        return
    data = job_data(job)
    predictor = run_predictor(job=job, run=run, data=data)
    if getattr(predictor, "module", None) is None:
        network_view_fail(view_id=view_id, reason="This job's network cannot be opened layer by layer.")
        return
    draw = {NetworkViewKind.VISUALISE: visualise_draw, NetworkViewKind.GROUPS: groups_draw,
            NetworkViewKind.ADVERSARIAL: adversarial_draw}[view.kind]
    figures, result = draw(view=view, data=data, predictor=predictor)
    with transaction.atomic():
        for position, (kind, figure, title, alt) in enumerate(figures):
            plot = view_plot_save(view=view, kind=kind, figure=figure, title=title, alt=alt, position=position)
            Plot.objects.filter(pk=plot.pk).update(network_view=view, subject=f"view{view.pk}_{position}")
        NetworkView.objects.filter(pk=view_id, status=NetworkViewStatus.DRAWING).update(
            status=NetworkViewStatus.READY, result=result, error="", finished_at=timezone.now())


def view_plot_save(*, view: NetworkView, kind: str, figure, title: str, alt: str, position: int) -> Plot:
    from explanations.ml.plots import figure_render
    from explanations.services.results_save import plot_files_save

    png, svg = figure_render(figure)
    return plot_files_save(job=view.job, classifier=NETWORK_CLASSIFIER, kind=kind, png=png, svg=svg, title=title, alt=alt,
                           stem=f"{view.job_id}/plots/{NETWORK_CLASSIFIER}_{kind}_view{view.pk}_{position}")


def layer_of(view: NetworkView) -> dict[str, Any]:
    return next(layer for layer in network_layers(job=view.job) if layer["name"] == view.params["layer"])


def row_caption(data, row: int) -> str:
    name = data.row_names[row]
    return f"Row {row}{f' ({name})' if name else ''}"


def visualise_draw(*, view: NetworkView, data, predictor) -> tuple[list, dict]:
    from explanations.ml import network_inside as inside
    from explanations.ml.plots.network import feature_grid_alt, feature_grid_plot

    layer, channels = layer_of(view), view.params["channels"]
    shown = inside.feature_visualise(predictor.module, layer["name"], inside.channel_directions(channels, layer["channels"]),
                                     shape=data.X.shape[1:], steps=FEATURE_STEPS, seed=int(view.job.params["seed"]))
    captions = [f"channel {c}" for c in channels]
    title = f"What {layer['label'].lower()} looks for — channels {', '.join(str(c) for c in channels)}"[:380]
    subtitle = (f"images grown from noise by {FEATURE_STEPS} steps of gradient ascent (jitter and blur keep them "
                "smooth); each picture's contrast stretched")
    figure = feature_grid_plot(list(shown.images), captions, title=title, subtitle=subtitle)
    alt = feature_grid_alt(layer_label=layer["label"].lower(), channels=channels, start=shown.start, end=shown.end)
    result = {"layer": layer["name"], "channels": channels,
              "activation_before": [round(float(v), 6) for v in shown.start],
              "activation_after": [round(float(v), 6) for v in shown.end]}
    return [("feature_visualisation", figure, title, alt)], result


def groups_of(*, predictor, layer: dict, image, n_groups: int, seed: int):
    """The image's neuron groups at the image's size, and each group's feature visualisation."""
    from explanations.ml import network_inside as inside

    activation = inside.layer_activation(predictor.module, layer["name"], image)
    groups = inside.neuron_groups(activation, n_groups, seed=seed)
    shown = inside.feature_visualise(predictor.module, layer["name"], groups.channels, shape=image.shape,
                                     steps=FEATURE_STEPS, seed=seed)
    return groups, inside.upsampled(groups.spatial, image.shape[:2]), shown


def groups_figure(*, layer: dict, image, groups, spatial, shown, subject: str, title: str):
    from explanations.ml.plots.network import neuron_groups_alt, neuron_groups_plot, place_of

    subtitle = (f"non-negative matrix factorisation of {layer['label'].lower()}'s {layer['channels']} channels into "
                f"{len(spatial)} groups; beside each, the image its channel mix responds to most")
    figure = neuron_groups_plot(image, spatial, list(shown.images), list(groups.shares), title=title, subtitle=subtitle,
                                caption=subject)
    alt = neuron_groups_alt(layer_label=layer["label"].lower(), shares=list(groups.shares),
                            places=[place_of(m) for m in spatial], subject=subject)
    return figure, alt


def group_records(groups) -> list[dict[str, Any]]:
    import numpy as np

    return [{"group": g + 1, "share": round(float(groups.shares[g]), 6),
             "top_channels": [int(c) for c in np.argsort(-groups.channels[g])[:3]]} for g in range(len(groups.shares))]


def groups_draw(*, view: NetworkView, data, predictor) -> tuple[list, dict]:
    layer, row, n = layer_of(view), view.params["row"], view.params["groups"]
    image = data.X[row]
    groups, spatial, shown = groups_of(predictor=predictor, layer=layer, image=image, n_groups=n,
                                       seed=int(view.job.params["seed"]))
    subject = row_caption(data, row)
    title = f"Which groups of neurons {subject.lower()} lights up — {layer['label'].lower()}"
    figure, alt = groups_figure(layer=layer, image=image, groups=groups, spatial=spatial, shown=shown, subject=subject,
                                title=title)
    return [("neuron_groups", figure, title, alt)], {"row": row, "layer": layer["name"], "groups": group_records(groups)}


def adversarial_draw(*, view: NetworkView, data, predictor) -> tuple[list, dict]:
    import numpy as np

    from explanations.ml import network_inside as inside
    from explanations.ml.modalities import explainer_for
    from explanations.ml.plots.image import attribution_class_maps
    from explanations.ml.plots.network import adversarial_alt, adversarial_plot

    params, job = view.params, view.job
    names = data.space.class_names
    row, target = params["row"], names.index(params["target"])
    classes = [int(c) for c in predictor.classes]
    if target not in classes:
        raise ApplicationError(f"The CNN never saw {params['target']} in training, so it cannot be steered towards it; "
                               "pick another target.")
    image = data.X[row]
    found = inside.targeted_fgsm(predictor.module, image, classes.index(target), epsilon=params["epsilon"],
                                 alpha=params["alpha"], iterations=params["iterations"])
    before, after = names[classes[int(np.argmax(found.logits_before))]], names[classes[int(np.argmax(found.logits_after))]]
    pair = np.stack([image, found.image.astype(image.dtype)])
    proba = predictor.predict_proba(pair)
    seed = int(job.params["seed"])
    explainer = explainer_for(ADVERSARIAL_EXPLAINER, "image")(**ADVERSARIAL_EXPLAINER_PARAMS).fit(
        data.background(seed), predictor, data.space, seed=seed)
    results = explainer.explain(pair, [row, row])
    maps = [attribution_class_maps(r.attribution, r.data)[0][1] for r in results]
    subject = row_caption(data, row)
    labels = [f"{subject}: {before} ({proba[0].max():.0%})", f"adversarial: {after} ({proba[1].max():.0%})"]
    summary = (f"Target {params['target']}: {'reached' if found.reached else 'not reached'} after {found.steps} "
               f"step{'s' if found.steps != 1 else ''}; L∞ change {found.linf:.3f} (ε = {params['epsilon']:g}, "
               f"α = {params['alpha']:g}).")
    title = f"An adversarial example: {subject.lower()} ({before}) pushed towards {params['target']}"
    figure = adversarial_plot(image, found.image, maps, labels, epsilon=params["epsilon"], summary=summary, title=title,
                              subtitle=f"iterative fast gradient sign; maps: {explainer.label}, towards each image's prediction")
    alt = adversarial_alt(before=before, after=after, target=params["target"], reached=found.reached, steps=found.steps,
                          linf=found.linf, epsilon=params["epsilon"])
    figures = [("adversarial", figure, title, alt)]
    layer = network_layers(job=job)[-1]
    records = {}
    for which, picture in (("original", image), ("adversarial", found.image.astype(image.dtype))):
        groups, spatial, shown = groups_of(predictor=predictor, layer=layer, image=picture, n_groups=ADVERSARIAL_GROUPS,
                                           seed=seed)
        caption = subject if which == "original" else f"The adversarial image ({after})"
        group_title = f"Neuron groups of the {which} image — {layer['label'].lower()}"
        group_figure, group_alt = groups_figure(layer=layer, image=picture, groups=groups, spatial=spatial, shown=shown,
                                                subject=caption, title=group_title)
        figures.append(("adversarial_groups", group_figure, group_title, group_alt))
        records[which] = group_records(groups)
    result = {"row": row, "target": params["target"], "predicted_before": before, "predicted_after": after,
              "reached": bool(found.reached), "linf": round(float(found.linf), 6), "steps": int(found.steps),
              "probability_before": {n: round(float(p), 6) for n, p in zip(names, proba[0])},
              "probability_after": {n: round(float(p), 6) for n, p in zip(names, proba[1])},
              "explainer": ADVERSARIAL_EXPLAINER, "groups_layer": layer["name"], "groups": records}
    return figures, result


# ---------------------------------------------------------------- the page


FORM_FIELDS = {NetworkViewKind.VISUALISE: ("layer", "channels"), NetworkViewKind.GROUPS: ("row", "layer", "groups"),
               NetworkViewKind.ADVERSARIAL: ("row", "target", "epsilon", "alpha", "iterations")}


def network_form_body(kind: str, post) -> dict[str, Any]:
    """A page form as the API's body: only the fields of its kind; channels typed as "0, 3, 5"."""
    body: dict[str, Any] = {}
    for name in FORM_FIELDS[kind]:
        value = (post.get(name) or "").strip()
        if name == "channels":
            body[name] = [part for part in value.replace(",", " ").split() if part]
        elif value != "":
            body[name] = value
    return body


def network_page(*, job: Job, row: int | None, post=None) -> dict[str, Any]:
    """What the "Inside the network" page needs; with ``post`` (one of its forms) a new view as ``created``, or the
    sentence of what was wrong (``form_error``, ``form_field``, ``form_kind``) with the values as typed kept."""
    network_check(job=job)
    context: dict[str, Any] = {"network": network_describe(job=job), "form_error": "", "form_field": "", "form_kind": "",
                               "typed": {}}
    rows = context["network"]["rows"]
    context["row"] = row if row in rows else (rows[0] if rows else None)
    if post is not None:
        kind = post.get("kind", "")
        if kind not in FORM_FIELDS:
            context.update(form_error="Pick what to draw: feature visualisation, neuron groups or adversarial example.",
                           form_kind="visualise")
        else:
            try:
                context["created"], _ = network_view_create(job=job, kind=kind, body=network_form_body(kind, post))
                return context
            except ApplicationError as exc:
                context.update(form_error=exc.message, form_field=exc.extra.get("field", ""), form_kind=kind,
                               typed={name: post.get(name, "") for name in FORM_FIELDS[kind]})
                if str(post.get("row", "")).isdigit():
                    context["row"] = int(post["row"])
    views = list(network_view_list(job=job))
    context["views"] = [{"view": v, "plots": list(v.plots.all()), "stuck": network_view_is_stuck(v),
                         "summary": view_summary(v)} for v in views]
    context["drawing"] = any(v.status == NetworkViewStatus.DRAWING and not network_view_is_stuck(v) for v in views)
    return context


def view_summary(view: NetworkView) -> str:
    """The request in words, for the view's card."""
    p = view.params
    if view.kind == NetworkViewKind.VISUALISE:
        return f"Feature visualisation of {p.get('layer')}, channels {', '.join(str(c) for c in p.get('channels', []))}"
    if view.kind == NetworkViewKind.GROUPS:
        return f"{p.get('groups')} neuron groups of {p.get('layer')} for row {p.get('row')}"
    return (f"Adversarial example: row {p.get('row')} towards {p.get('target')} (ε = {p.get('epsilon')}, "
            f"α = {p.get('alpha')}, up to {p.get('iterations')} iterations)")
