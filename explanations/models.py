"""Jobs (train classifiers, explain rows), the models they trained, the explanations and the plot files."""

from django.conf import settings
from django.db import models
from django.utils.text import slugify


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINAL_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class Job(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs")
    dataset = models.ForeignKey("datasets.Dataset", on_delete=models.CASCADE, related_name="jobs")
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    classifiers = models.JSONField(default=list, blank=True)  # registry keys, in the user's order
    explainers = models.JSONField(default=list, blank=True)
    rows_spec = models.JSONField(default=dict, blank=True)  # {ids: [...]} | {names: [...]} | {random: N, seed} | {misclassified: N} | {all_test: true}
    params = models.JSONField(default=dict, blank=True)  # {"test_size", "seed", "<explainer key>": {...}, "classifiers": {key: {...}}}
    schema = models.JSONField(default=dict, blank=True)  # the dataset's schema when the job was made
    stage = models.CharField(max_length=300, blank=True)
    error = models.TextField(blank=True)
    request_key = models.CharField(max_length=64, blank=True, db_index=True)  # same form posted twice = one job
    result_zip = models.FileField(upload_to="jobs/", max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "request_key"], condition=~models.Q(request_key=""),
                                    name="one_job_per_request_key"),
        ]

    def __str__(self) -> str:
        return f"Job {self.pk} on {self.dataset_id}"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


class ModelRunStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    TRAINED = "trained", "Trained"
    DONE = "done", "Done"


class ModelRun(models.Model):
    """One classifier of a job: its fitted model file, test metrics, the rows it explains and its progress."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="runs")
    classifier = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=ModelRunStatus.choices, default=ModelRunStatus.PENDING)
    model_file = models.FileField(upload_to="jobs/", max_length=300, blank=True)  # written by our worker only
    metrics = models.JSONField(default=dict, blank=True)
    rows = models.JSONField(default=list, blank=True)  # row ids this classifier explains
    units_done = models.PositiveIntegerField(default=0)
    units_total = models.PositiveIntegerField(default=1)
    seconds = models.FloatField(default=0.0)
    started_at = models.DateTimeField(null=True, blank=True)  # its first stage: the clock its live ETA reads
    worker = models.CharField(max_length=200, blank=True)  # the Celery worker (hostname) that ran it, e.g. for GPU routing
    stage = models.CharField(max_length=300, blank=True)  # what this classifier's task is doing; the job's stage is the latest of any
    # Delivery bookkeeping, so a task delivered twice (or re-queued by the stale-job sweeper) never runs alongside
    # a live copy of itself: the task holding the run beats ``heartbeat_at`` at every batch.
    task_id = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)  # how many times a task started on this run
    queued_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    rows_resolved = models.BooleanField(default=False)  # ``rows`` is final (it may be empty): its batches can be made

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["job", "classifier"], name="one_run_per_classifier")]

    def __str__(self) -> str:
        return f"{self.classifier} in job {self.job_id}"


class StepKind(models.TextChoices):
    TRAIN = "train", "Train"
    EXPLAIN = "explain", "Explain"
    TRUST = "trust", "Trust"
    SUMMARY = "summary", "Summary rows"
    RUN_FINISH = "run_finish", "Global views"
    WHATIF = "whatif", "What-if curves"
    JOB_FINISH = "job_finish", "Finish"


class StepStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class Step(models.Model):
    """One Celery task of a job's pipeline: train a classifier, explain a batch of rows with one explainer, measure
    that batch's trust, draw a classifier's global views, draw one row's what-if curves, or finish the job.

    A step is made once (``key`` is unique in its job, so a join reached twice makes nothing twice), sent to the
    queue by ``pipeline.steps_feed`` (``queued_at`` empty: not in the queue yet), held by one task at a time (the
    holder beats ``heartbeat_at``) and redone from what is saved when its worker dies.
    """

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="steps")
    run = models.ForeignKey(ModelRun, on_delete=models.CASCADE, null=True, blank=True, related_name="steps")
    kind = models.CharField(max_length=16, choices=StepKind.choices)
    key = models.CharField(max_length=200)  # e.g. "explain:random_forest:lime:12" (kind, classifier, explainer, first row)
    explainer = models.CharField(max_length=64, blank=True)
    rows = models.JSONField(default=list, blank=True)  # row ids of an explain or trust step
    status = models.CharField(max_length=16, choices=StepStatus.choices, default=StepStatus.PENDING, db_index=True)
    worker = models.CharField(max_length=200, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    seconds = models.FloatField(default=0.0)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["job", "key"], name="one_step_per_key")]

    def __str__(self) -> str:
        return f"{self.key} of job {self.job_id}"


class Explanation(models.Model):
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="explanations")
    classifier = models.CharField(max_length=64)
    explainer = models.CharField(max_length=64)
    row = models.PositiveIntegerField()
    row_name = models.CharField(max_length=300, blank=True)
    in_train = models.BooleanField(default=False)
    true_label = models.CharField(max_length=200, blank=True)
    predicted = models.CharField(max_length=200)
    probabilities = models.JSONField(default=dict, blank=True)  # class name -> p
    data = models.JSONField(default=dict, blank=True)
    meta = models.JSONField(default=dict, blank=True)
    trust = models.JSONField(default=dict, blank=True)  # how far to trust this explanation (faithfulness, stability, ...)
    seconds = models.FloatField(default=0.0)

    class Meta:
        ordering = ["classifier", "row", "explainer"]
        constraints = [
            models.UniqueConstraint(fields=["job", "classifier", "explainer", "row"], name="one_explanation_per_row")
        ]

    def __str__(self) -> str:
        return f"row {self.row} by {self.classifier} / {self.explainer}"

    @property
    def is_correct(self) -> bool | None:
        return None if not self.true_label else self.true_label == self.predicted

    @property
    def confidence(self) -> float:
        return float(self.probabilities.get(self.predicted, 0.0))


class Plot(models.Model):
    """A rendered figure, as PNG and SVG; served only through views that check the job's owner."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="plots")
    explanation = models.ForeignKey(Explanation, on_delete=models.CASCADE, null=True, blank=True, related_name="plots")
    classifier = models.CharField(max_length=64, blank=True)
    kind = models.CharField(max_length=32)  # lime | anchor | shap | confusion_matrix | shap_summary | shap_importance | lime_importance | whatif | partial_dependence
    subject = models.CharField(max_length=200, blank=True)  # what else tells it apart, e.g. "row23_age" for a what-if curve
    title = models.CharField(max_length=400)
    alt = models.TextField(blank=True)
    png = models.FileField(upload_to="jobs/", max_length=300)
    svg = models.FileField(upload_to="jobs/", max_length=300)
    # A fresh explanation of an edited row (the what-if editor): shown with its scenario, never as a job-wide view.
    scenario = models.ForeignKey("Scenario", on_delete=models.CASCADE, null=True, blank=True, related_name="plots")
    # A look inside the network asked for after the job ran: shown with its view, never as a job-wide one.
    network_view = models.ForeignKey("NetworkView", on_delete=models.CASCADE, null=True, blank=True, related_name="plots")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.title

    @property
    def slug(self) -> str:
        return (f"{self.classifier or 'job'}_{self.kind}" + (f"_row{self.explanation.row}" if self.explanation_id else "")
                + (f"_{slugify(self.subject)}" if self.subject else ""))


class WhatIfStatus(models.TextChoices):
    DRAWING = "drawing", "Being drawn"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class WhatIf(models.Model):
    """Probabilities as one feature sweeps its range, every classifier of the job overlaid: for one row (an ICE
    curve) or, with ``row`` empty, averaged over the test rows (partial dependence)."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="whatifs")
    row = models.PositiveIntegerField(null=True, blank=True)
    feature = models.CharField(max_length=300)
    grid = models.JSONField(default=list, blank=True)  # encoded feature values (category codes for categories)
    grid_labels = models.JSONField(default=list, blank=True)  # the same values as people read them
    curves = models.JSONField(default=dict, blank=True)  # {classifier: {class name: [p, ...]}}
    plot = models.ForeignKey(Plot, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # Asked for after the job ran: a worker draws it (no model is loaded in a web request) while it is DRAWING.
    status = models.CharField(max_length=16, choices=WhatIfStatus.choices, default=WhatIfStatus.READY)
    error = models.TextField(blank=True)
    requested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["row", "feature"]
        constraints = [
            models.UniqueConstraint(fields=["job", "row", "feature"], name="one_whatif_per_row_feature"),
            models.UniqueConstraint(fields=["job", "feature"], condition=models.Q(row__isnull=True),
                                    name="one_partial_dependence_per_feature"),
        ]

    def __str__(self) -> str:
        return f"what-if {self.feature} for {'row ' + str(self.row) if self.row is not None else 'the test rows'}"


class JobShare(models.Model):
    """A read-only link to a job's report that works logged out, until its owner stops sharing (the row goes)."""

    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="share")
    token = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"share of job {self.job_id}"


class ScenarioStatus(models.TextChoices):
    COMPUTING = "computing", "Being computed"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class Scenario(models.Model):
    """A row of a job with some feature values changed (the what-if editor): every classifier's prediction for the
    edited row and a fresh explanation of it, computed on a worker (the ``interactive`` queue)."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="scenarios")
    row = models.PositiveIntegerField()
    changes = models.JSONField(default=dict, blank=True)  # {feature: new value}: a number, or a category as text
    status = models.CharField(max_length=16, choices=ScenarioStatus.choices, default=ScenarioStatus.COMPUTING)
    error = models.TextField(blank=True)
    predictions = models.JSONField(default=dict, blank=True)  # {classifier: {predicted, probabilities: {class: p}}}
    # The API's explanation records (as /api/jobs/{id}/explanations/), their plots named by ``plot_ids``.
    explanations = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"scenario {self.pk} of row {self.row} in job {self.job_id}"


class NetworkViewKind(models.TextChoices):
    VISUALISE = "visualise", "Feature visualisation"
    GROUPS = "groups", "Neuron groups"
    ADVERSARIAL = "adversarial", "Adversarial example"


class NetworkViewStatus(models.TextChoices):
    DRAWING = "drawing", "Being drawn"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class NetworkView(models.Model):
    """A look inside an image job's CNN, asked for after the job ran: feature visualisations of a layer's channels,
    an image's neuron groups, or an adversarial example; computed on a worker of the ``gpu`` queue."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="network_views")
    kind = models.CharField(max_length=16, choices=NetworkViewKind.choices)
    params = models.JSONField(default=dict, blank=True)  # the request as checked: layer, channels, row, target, …
    status = models.CharField(max_length=16, choices=NetworkViewStatus.choices, default=NetworkViewStatus.DRAWING)
    error = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)  # what the API shows once ready (plots are Plot rows)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display().lower()} {self.pk} of job {self.job_id}"
