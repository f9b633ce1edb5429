"""JSON API for classifiers, explainers and jobs: the same services as the pages."""

from django.core.files.storage import default_storage
from django.http import FileResponse, HttpRequest
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from datasets.selectors import dataset_get
from explainer_site.exceptions import ApplicationError
from explainer_site.parsers import StrictJSONParser
from explainer_site.request_values import query_int, query_text
from explanations.compare import jobs_compare
from explanations.exports import explanation_record, job_zip_fresh
from explanations.insights import job_trust_summary
from explanations.ml.catalogue import CLASSIFIERS, EXPLAINERS, classifier_for, explainer_entry, explainer_modalities
from explanations.models import Job, JobStatus, Plot, WhatIfStatus
from explanations.network_views import network_describe, network_view_create, network_view_get, network_view_record
from explanations.progress import job_live_status
from explanations.report import report_response
from explanations.scenarios import scenario_create, scenario_get, scenario_list, scenario_record
from explanations.selectors import (
    explanation_list,
    job_batches,
    job_eta_seconds,
    job_get,
    job_global_plots,
    job_list,
    job_metrics,
    job_run_stages,
)
from explanations.services.job_cancel import job_cancel
from explanations.services.job_create import job_create, job_rerun
from explanations.services.job_delete import job_delete
from explanations.shares import job_share, job_unshare
from explanations.whatifs import whatif_get
from uploaded_models.job_classifiers import classifier_labels_of


def plot_link(request: HttpRequest):
    def link(plot: Plot, extension: str) -> str:
        return request.build_absolute_uri(reverse("explanations:plot_file", args=[plot.pk, extension]))

    return link


def job_payload(job: Job, *, detail: bool = False) -> dict:
    """A job as the API shows it; ``detail`` adds the pipeline's batches and the ETA (one job's page, not the list)."""
    live = job_live_status(job=job)
    payload = {
        "id": job.pk,
        "dataset": job.dataset_id,
        "status": job.status,
        "progress": live["progress"],
        "stage": job.stage,
        "headline": live["headline"],  # the stage running now (each classifier's when two run side by side)
        "eta_seconds": live["eta_seconds"],  # from this job's rates so far; null when unknown or finished
        "runs": job_run_stages(job=job),
        "error": job.error or None,
        "classifiers": job.classifiers,
        "classifier_labels": classifier_labels_of(job.classifiers),  # an uploaded model's name for its "model:<id>"
        "explainers": job.explainers,
        "rows": job.rows_spec,
        "params": job.params,
        "metrics": job_metrics(job=job),
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }
    if detail:
        payload["batches"] = job_batches(job=job)
        if payload["eta_seconds"] is None:  # before any rate is known, the batches timed so far
            payload["eta_seconds"] = job_eta_seconds(job=job, batches=payload["batches"])
    return payload


BATCH_OUTPUT = inline_serializer("JobBatch", {
    "classifier": serializers.CharField(), "explainer": serializers.CharField(),
    "rows": serializers.ListField(child=serializers.IntegerField()),
    "status": serializers.ChoiceField(["pending", "running", "done", "failed", "cancelled"]),
    "worker": serializers.CharField(), "seconds": serializers.FloatField(), "attempts": serializers.IntegerField(),
    "trust": serializers.ChoiceField(["pending", "running", "done", "failed", "cancelled", "skipped"]),
}, many=True)
JOB_DETAIL_OUTPUT = inline_serializer("JobDetail", {
    "id": serializers.IntegerField(), "dataset": serializers.IntegerField(), "status": serializers.CharField(),
    "progress": serializers.FloatField(), "stage": serializers.CharField(), "headline": serializers.CharField(), "runs": serializers.ListField(),
    "error": serializers.CharField(allow_null=True), "classifiers": serializers.ListField(),
    "classifier_labels": serializers.DictField(child=serializers.CharField(), help_text="Each classifier key's label: an uploaded model's name for its \"model:<id>\""),
    "explainers": serializers.ListField(), "rows": serializers.DictField(), "params": serializers.DictField(),
    "metrics": serializers.DictField(), "created_at": serializers.DateTimeField(),
    "started_at": serializers.DateTimeField(allow_null=True), "finished_at": serializers.DateTimeField(allow_null=True),
    "batches": BATCH_OUTPUT, "eta_seconds": serializers.FloatField(allow_null=True),
})


def plugin_variants(key: str, modalities: list[str], lookup) -> dict[str, dict]:
    """How a key reads on each kind of data (texts and images have their own description and parameters)."""
    variants = {}
    for modality in modalities:
        plugin = lookup(key, modality)
        variants[modality] = {"description": plugin.description, "params": [p.as_dict() for p in plugin.params]}
    return variants


class ClassifierListApi(APIView):
    def get(self, request):
        return Response([{"key": s.key, "label": s.label, "description": s.description, "queue": s.queue,
                          "params": [p.as_dict() for p in s.params], "modalities": list(s.modalities),
                          "variants": plugin_variants(s.key, list(s.modalities), classifier_for)}
                         for s in CLASSIFIERS.values()])


class ExplainerListApi(APIView):
    def get(self, request):
        return Response([{"key": e.key, "label": e.label, "description": e.description,
                          "params": [p.as_dict() for p in e.params], "modalities": explainer_modalities(e.key),
                          "variants": plugin_variants(e.key, explainer_modalities(e.key), explainer_entry)}
                         for e in EXPLAINERS.values()])


class JobInput(serializers.Serializer):
    dataset = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    classifiers = serializers.ListField(child=serializers.CharField(max_length=100), max_length=100)
    explainers = serializers.ListField(child=serializers.CharField(max_length=100), max_length=100)
    rows = serializers.DictField(required=False)
    params = serializers.DictField(required=False, default=dict)
    request_key = serializers.CharField(required=False, allow_blank=True, max_length=64)


class JobListApi(APIView):
    parser_classes = [StrictJSONParser]

    def get(self, request):
        return Response([job_payload(job) for job in job_list(user=request.user).prefetch_related("runs")])

    @extend_schema(request=JobInput)
    def post(self, request):
        serializer = JobInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        dataset = dataset_get(user=request.user, dataset_id=values["dataset"])
        request_key = values.get("request_key") or request.headers.get("Idempotency-Key", "")
        if len(request_key) > 64:
            raise ApplicationError("The Idempotency-Key header takes at most 64 characters (a UUID is 36).",
                                   {"field": "request_key"})
        job = job_create(owner=request.user, dataset=dataset, classifiers=values["classifiers"],
                         explainers=values["explainers"], rows=values.get("rows"), params=values.get("params"),
                         request_key=request_key)  # a dead queue is an ApplicationError (503)
        return Response({"id": job.pk, "status": job.status}, status=status.HTTP_201_CREATED)


class JobDetailApi(APIView):
    @extend_schema(responses=JOB_DETAIL_OUTPUT)
    def get(self, request, job_id: int):
        return Response(job_payload(job_get(user=request.user, job_id=job_id), detail=True))

    def delete(self, request, job_id: int):
        job_delete(job=job_get(user=request.user, job_id=job_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class JobCancelApi(APIView):
    def post(self, request, job_id: int):
        job = job_cancel(job=job_get(user=request.user, job_id=job_id))
        return Response(job_payload(job, detail=True))


class JobExplanationsApi(APIView):
    @extend_schema(parameters=[OpenApiParameter("classifier", str), OpenApiParameter("row", int)])
    def get(self, request, job_id: int):
        job = job_get(user=request.user, job_id=job_id)
        items = explanation_list(job=job, classifier=query_text(request.query_params, "classifier"),
                                 row=query_int(request.query_params, "row"))
        link = plot_link(request)
        labels = classifier_labels_of(job.classifiers)
        return Response([explanation_record(e, link, labels) for e in items])


class JobDownloadApi(APIView):
    def get(self, request, job_id: int):
        job = job_get(user=request.user, job_id=job_id)
        if job.status != JobStatus.SUCCEEDED:
            raise ApplicationError("The results are not ready yet; the ZIP exists once the job has succeeded.", status=409)
        return FileResponse(default_storage.open(job_zip_fresh(job=job), "rb"), as_attachment=True, filename=f"explainer-job-{job.pk}.zip",
                            content_type="application/zip")


def plot_records(plots, link) -> list[dict]:
    return [{"classifier": p.classifier, "kind": p.kind, "title": p.title, "png": link(p, "png"), "svg": link(p, "svg")}
            for p in plots]


class JobWhatIfApi(APIView):
    @extend_schema(parameters=[OpenApiParameter("row", int), OpenApiParameter("feature", str, required=True)])
    def get(self, request, job_id: int):
        """The probabilities as ``feature`` sweeps its range for ``row`` (omit ``row`` for partial dependence).

        A curve that was not drawn with the job is drawn by a worker: the first answer is 202 with ``status``
        ``"drawing"``; the same GET answers 200 with the curve once ``status`` is ``"ready"`` (or ``"failed"``
        with ``error``)."""
        job = job_get(user=request.user, job_id=job_id)
        row, feature = query_int(request.query_params, "row"), query_text(request.query_params, "feature")
        if not feature:
            raise ApplicationError("Say which feature to vary, e.g. ?row=5&feature=age.", {"field": "feature"})
        whatif = whatif_get(job=job, row=row, feature=feature)
        body = {"row": whatif.row, "feature": whatif.feature, "grid": whatif.grid, "grid_labels": whatif.grid_labels,
                "curves": whatif.curves, "plots": plot_records([whatif.plot] if whatif.plot else [], plot_link(request)),
                "status": whatif.status, "error": whatif.error}
        # Not drawn yet: a worker draws it now; ask again (the same GET) until "status" is "ready".
        return Response(body, status=status.HTTP_202_ACCEPTED if whatif.status == WhatIfStatus.DRAWING else status.HTTP_200_OK)


class JobSummaryApi(APIView):
    def get(self, request, job_id: int):
        """Per classifier x explainer the mean of each trust metric, ranked, with readings; and the global plots."""
        job = job_get(user=request.user, job_id=job_id)
        plots = job_global_plots(job=job).exclude(kind="whatif")
        return Response({**job_trust_summary(job=job), "plots": plot_records(plots, plot_link(request))})


class JobRerunApi(APIView):
    def post(self, request, job_id: int):
        """The same job again: dataset, schema, rows, parameters and seeds."""
        job = job_rerun(job=job_get(user=request.user, job_id=job_id))
        return Response({"id": job.pk, "status": job.status}, status=status.HTTP_201_CREATED)


class JobReportApi(APIView):
    @extend_schema(parameters=[OpenApiParameter("download", bool)], responses={(200, "text/html"): str})
    def get(self, request, job_id: int):
        """The results as one self-contained HTML file (plots embedded, no external URL); ``?download=1`` saves it."""
        return report_response(job_get(user=request.user, job_id=job_id), download="download" in request.query_params)


class JobShareApi(APIView):
    @extend_schema(request=None, responses={201: inline_serializer("JobShareOutput", {"url": serializers.CharField()})})
    def post(self, request, job_id: int):
        """A read-only link to the job's report that works logged out (the same link when shared already)."""
        share = job_share(job=job_get(user=request.user, job_id=job_id))
        return Response({"url": request.build_absolute_uri(reverse("explanations:shared", args=[share.token]))},
                        status=status.HTTP_201_CREATED)

    def delete(self, request, job_id: int):
        """Stop sharing: the link answers 404 from now on."""
        job_unshare(job=job_get(user=request.user, job_id=job_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class JobCompareApi(APIView):
    @extend_schema(parameters=[OpenApiParameter("a", int, required=True), OpenApiParameter("b", int, required=True)])
    def get(self, request):
        """Two of your jobs on the same dataset: metrics, per-row predictions and top features of both, with
        ``differences`` (accuracy b − a per classifier, top features not shared, rows predicted differently)."""
        ids = {}
        for side in ("a", "b"):
            ids[side] = query_int(request.query_params, side)
            if ids[side] is None:
                raise ApplicationError("Say which two jobs to compare, e.g. ?a=12&b=15.", {"field": side})
        return Response(jobs_compare(a=job_get(user=request.user, job_id=ids["a"]),
                                     b=job_get(user=request.user, job_id=ids["b"])))


class ScenarioInput(serializers.Serializer):
    row = serializers.IntegerField(min_value=0, max_value=2**31 - 1)
    changes = serializers.DictField(help_text="feature → new value: a number, or one of the categories seen in the data")


SCENARIO_OUTPUT = inline_serializer("ScenarioOutput", {
    "id": serializers.IntegerField(), "job": serializers.IntegerField(),
    "status": serializers.ChoiceField(choices=["computing", "ready", "failed"]), "error": serializers.CharField(),
    "row": serializers.IntegerField(), "changes": serializers.DictField(),
    "predictions": serializers.DictField(help_text="classifier → {predicted, probabilities: {class: p}}"),
    "explanations": serializers.ListField(child=serializers.DictField(),
                                          help_text="the records of /api/jobs/{id}/explanations/, for the edited row"),
    "created_at": serializers.DateTimeField(), "finished_at": serializers.DateTimeField(allow_null=True)})


class JobScenarioListApi(APIView):
    parser_classes = [StrictJSONParser]

    @extend_schema(responses={200: SCENARIO_OUTPUT})
    def get(self, request, job_id: int):
        """The job's scenarios, newest first (``?row=`` for one row's)."""
        job = job_get(user=request.user, job_id=job_id)
        link = plot_link(request)
        return Response([scenario_record(s, link) for s in scenario_list(job=job, row=query_int(request.query_params, "row"))])

    @extend_schema(request=ScenarioInput, responses={201: inline_serializer("ScenarioCreated", {
        "id": serializers.IntegerField(), "status": serializers.CharField()})})
    def post(self, request, job_id: int):
        """The what-if editor: ``row`` with ``changes`` ({feature: value}) predicted by every classifier and explained
        again, on a worker. Answers 201 ``{id, status: "computing"}``; GET the scenario until ``status`` is
        ``"ready"`` (or ``"failed"`` with ``error``). Unknown features, wrong types, categories never seen and
        numbers far outside the values seen are 400; too many scenarios (per job, per account and hour) 429."""
        job = job_get(user=request.user, job_id=job_id)
        serializer = ScenarioInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        scenario = scenario_create(job=job, row=values["row"], changes=values["changes"])
        return Response({"id": scenario.pk, "status": scenario.status}, status=status.HTTP_201_CREATED)


class JobScenarioDetailApi(APIView):
    @extend_schema(responses={200: SCENARIO_OUTPUT})
    def get(self, request, job_id: int, scenario_id: int):
        """One scenario: ``status``, ``row``, ``changes``, ``predictions`` of every classifier and ``explanations``."""
        job = job_get(user=request.user, job_id=job_id)
        return Response(scenario_record(scenario_get(job=job, scenario_id=scenario_id), plot_link(request)))


NETWORK_VIEW_OUTPUT = inline_serializer("NetworkViewOutput", {
    "id": serializers.IntegerField(), "job": serializers.IntegerField(),
    "kind": serializers.ChoiceField(choices=["visualise", "groups", "adversarial"]),
    "status": serializers.ChoiceField(choices=["drawing", "ready", "failed"]),
    "error": serializers.CharField(allow_null=True), "params": serializers.DictField(),
    "plots": serializers.ListField(child=serializers.DictField(), help_text="{kind, title, alt, png, svg}, once ready"),
    "predicted_before": serializers.CharField(required=False, help_text="adversarial, once ready"),
    "predicted_after": serializers.CharField(required=False, help_text="adversarial, once ready"),
    "reached": serializers.BooleanField(required=False, help_text="adversarial, once ready"),
    "linf": serializers.FloatField(required=False, help_text="adversarial, once ready: max |change| per pixel"),
    "created_at": serializers.DateTimeField(), "finished_at": serializers.DateTimeField(allow_null=True)})
NETWORK_VIEW_QUEUED = inline_serializer("NetworkViewQueued", {"id": serializers.IntegerField(),
                                                              "status": serializers.CharField()})


class JobNetworkApi(APIView):
    def get(self, request, job_id: int):
        """An image job's CNN: its convolution layers (name, channels, map size), the classes an adversarial
        example may aim at, the explained rows one may look at, and the limits of one request."""
        return Response(network_describe(job=job_get(user=request.user, job_id=job_id)))


class NetworkViewCreateApi(APIView):
    """POST a look inside the network: checked here, drawn on a worker of the ``gpu`` queue. Answers 202
    ``{id, status: "drawing"}``; GET ``/api/jobs/{id}/network/views/{vid}/`` until ``status`` is ``"ready"``
    (or ``"failed"`` with ``error``). An identical request already drawn answers 200 with its ``{id, status}``."""

    parser_classes = [StrictJSONParser]
    kind = ""

    def post(self, request, job_id: int):
        view, reused = network_view_create(job=job_get(user=request.user, job_id=job_id), kind=self.kind, body=request.data)
        ready = reused and view.status == "ready"
        return Response({"id": view.pk, "status": view.status},
                        status=status.HTTP_200_OK if ready else status.HTTP_202_ACCEPTED)


class JobNetworkVisualiseApi(NetworkViewCreateApi):
    kind = "visualise"

    @extend_schema(request=inline_serializer("NetworkVisualiseInput", {
        "layer": serializers.CharField(help_text="conv1, conv2, … (GET /network/ lists them)"),
        "channels": serializers.ListField(child=serializers.IntegerField(), help_text="up to 16 channel numbers")}),
        responses={202: NETWORK_VIEW_QUEUED})
    def post(self, request, job_id: int):
        """Feature visualisation: for each channel of ``layer``, an image grown from noise that excites it most."""
        return super().post(request, job_id)


class JobNetworkGroupsApi(NetworkViewCreateApi):
    kind = "groups"

    @extend_schema(request=inline_serializer("NetworkGroupsInput", {
        "row": serializers.IntegerField(help_text="an explained row"), "layer": serializers.CharField(),
        "groups": serializers.IntegerField(help_text="2 to 10 (default 4)")}), responses={202: NETWORK_VIEW_QUEUED})
    def post(self, request, job_id: int):
        """Neuron groups: ``layer``'s activations for ``row`` factorised (NMF) into ``groups`` regions, each drawn
        over the image beside its feature visualisation."""
        return super().post(request, job_id)


class JobAdversarialApi(NetworkViewCreateApi):
    kind = "adversarial"

    @extend_schema(request=inline_serializer("AdversarialInput", {
        "row": serializers.IntegerField(help_text="an explained row"),
        "target": serializers.CharField(help_text="a class name of the job"),
        "epsilon": serializers.FloatField(help_text="L∞ bound, fraction of the pixel range in (0, 1], default 0.05"),
        "alpha": serializers.FloatField(help_text="step size, fraction of the pixel range in (0, 1], default 0.05"),
        "iterations": serializers.IntegerField(help_text="1 to 100, default 100; stops once the target is reached")}),
        responses={202: NETWORK_VIEW_QUEUED})
    def post(self, request, job_id: int):
        """An adversarial example: iterative fast gradient sign from ``row`` towards ``target`` within ε; once
        ready the view holds ``predicted_before``, ``predicted_after``, ``reached``, ``linf`` and ``plots`` (both
        images with their predictions, attribution maps and neuron groups)."""
        return super().post(request, job_id)


class JobNetworkViewApi(APIView):
    @extend_schema(responses={200: NETWORK_VIEW_OUTPUT, 202: NETWORK_VIEW_OUTPUT})
    def get(self, request, job_id: int, view_id: int):
        """One look inside the network: 202 while it is drawn, 200 once ``ready`` (its result and plots) or
        ``failed`` (``error`` says why and what to try)."""
        view = network_view_get(job=job_get(user=request.user, job_id=job_id), view_id=view_id)
        return Response(network_view_record(view, plot_link(request)),
                        status=status.HTTP_202_ACCEPTED if view.status == "drawing" else status.HTTP_200_OK)
