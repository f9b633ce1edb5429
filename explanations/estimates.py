"""How long a job takes: before it starts (the job form's estimate) and as the plan its live ETA measures against.

The rates are wall seconds on one worker, measured on this project's machine kind (2 AMD EPYC cores, shared)
with ``scripts/measure_rates.py``: the default Adult job (24,420 training rows, 14 features, 3 random rows,
5 stability reruns per explainer, every phase timed by the stage it records). A row's seconds include its trust
scores, its plot and its storage; training includes the test metrics, the model file and the confusion matrix.
Classifiers not measured on Adult take their family's rates (tree / linear / other) and are marked so; texts and
images have rough rates of their own. Once an account has finished jobs, its own history corrects the table
(``history_factor``): the median of actual ÷ estimated over its last few jobs.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from django.conf import settings

from explanations.ml.catalogue import explainer_entry
from explanations.ml.modalities import schema_modality
from explanations.ml.params import params_clean
from explanations.quotas import image_trust_images, roar_retrainings
from uploaded_models.job_classifiers import classifier_spec_or_none


@dataclass(frozen=True)
class ClassifierRates:
    train_per_1000_rows: float  # prepare the data + fit + test metrics + confusion matrix, per 1,000 training rows
    row_seconds: dict[str, float]  # per explained row, by explainer key, at its default parameters
    global_views: float  # the SHAP summary (up to 200 test rows), importance bars, trust summary
    measured: bool = True


# Measured 2026-12-02 on the default Adult job (scripts/measure_rates.py adult.csv 3): random forest trained in
# 7.1 s (0.5 s fixed + 0.27 s per 1,000 rows), LIME 4.2 s, Anchors 76 s, SHAP 9.3 s for 3 rows, global views 17 s; logistic
# regression 7.4 s (0.5 s + 0.28 s / 1,000), LIME 2.5 s, Anchors 5.7 s, SHAP 1.3 s, global views 1.2 s; what-if 5.7 s.
# The job took 138 s in all; the same job took 85–126 s in issue 17's sessions (rows differ: Anchors varies most).
RATES: dict[str, ClassifierRates] = {
    "random_forest": ClassifierRates(0.27, {"lime": 1.4, "anchor": 25.4, "shap": 3.1}, 17.0),
    "logistic_regression": ClassifierRates(0.28, {"lime": 0.82, "anchor": 1.9, "shap": 0.42}, 1.2),
}
FAMILY_RATES: dict[str, ClassifierRates] = {  # not measured one by one: the measured member of the family
    "tree": ClassifierRates(0.27, {"lime": 1.4, "anchor": 25.4, "shap": 3.1}, 17.0, measured=False),
    "linear": ClassifierRates(0.28, {"lime": 0.82, "anchor": 1.9, "shap": 0.42}, 1.2, measured=False),
    "other": ClassifierRates(0.60, {"lime": 1.5, "anchor": 20.0, "shap": 6.0}, 10.0, measured=False),
}
MODALITY_RATES: dict[str, ClassifierRates] = {  # rough: a message or an image costs more than a table row
    "text": ClassifierRates(0.5, {"lime": 3.0, "anchor": 15.0, "shap": 5.0}, 3.0, measured=False),
    "image": ClassifierRates(20.0, {"lime": 8.0, "shap": 10.0, "gradient_shap": 2.0, "integrated_gradients": 2.0}, 5.0,
                             measured=False),
}
TRAIN_SECONDS = 0.5  # reading the data, saving the model: what training costs on any size
UNKNOWN_ROW_SECONDS = 5.0  # an explainer none of the tables name
MEASURED_STABILITY_RUNS = 5  # the rates above include 5 stability reruns per row
EXPLAIN_SHARE = 0.75  # of a row's seconds, what scales with samples and reruns (the rest: plot, trust, storage)
WHATIF_SECONDS = 2.5  # partial dependence over the test rows, every classifier
WHATIF_ROW_SECONDS = 1.1  # one explained row's what-if curves
PACKING_SECONDS = 0.5
HISTORY_JOBS = 5  # finished jobs of the account that correct the table
HISTORY_FACTOR_BOUNDS = (0.33, 3.0)


@dataclass
class RunPlan:
    """Expected seconds of one classifier's phases."""

    train: float
    row_seconds: dict[str, float]  # per row, by explainer
    rows: int
    global_views: float
    measured: bool = True

    @property
    def explain(self) -> float:
        return self.rows * sum(self.row_seconds.values())

    @property
    def total(self) -> float:
        return self.train + self.explain + self.global_views


@dataclass
class JobPlan:
    runs: dict[str, RunPlan]
    finish: float  # what-if curves and the ZIP, once every classifier is done
    factor: float = 1.0  # the account's history: actual ÷ estimated
    rows: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return (sum(r.total for r in self.runs.values()) + self.finish) * self.factor


def classifier_rates(key: str, modality: str) -> ClassifierRates:
    if modality in MODALITY_RATES:
        return MODALITY_RATES[modality]
    if key in RATES:
        return RATES[key]
    spec = classifier_spec_or_none(key)  # an uploaded model: the rates of its family (a skops forest's are trees')
    return FAMILY_RATES.get(spec.family if spec else "other", FAMILY_RATES["other"])


def explainer_scale(key: str, params: dict, modality: str, stability_runs: int) -> float:
    """How much more (or less) a row costs than at the measured defaults: samples drawn × (1 + reruns)."""
    try:
        entry = explainer_entry(key, modality)  # the catalogue's: no explainer class in the web process
        samples = entry.samples_per_row(params or {}) / max(entry.samples_per_row(params_clean(entry.params, {})), 1)
    except Exception:  # an explainer this modality lacks: the job's validation says so, the estimate stays 1
        samples = 1.0
    reruns = (1 + stability_runs) / (1 + MEASURED_STABILITY_RUNS)
    return (1 - EXPLAIN_SHARE) + EXPLAIN_SHARE * samples * reruns


def training_rows(n_rows: int, test_size: float) -> int:
    return min(max(int(n_rows * (1 - test_size)), 1), settings.EXPLAINER_MAX_TRAIN_ROWS)


def plan_build(*, schema: dict, n_rows: int, classifiers: list[str], explainers: list[str], rows: int, params: dict,
               rows_by_classifier: dict[str, int] | None = None) -> JobPlan:
    """The expected seconds of each phase; ``params`` as the job stores them (cleaned) or as the form sends them."""
    modality = schema_modality(schema)
    test_size = float(params.get("test_size") or 0.25)
    trust = params.get("trust") or {}
    try:
        stability_runs = max(int(trust.get("stability_runs", settings.EXPLAINER_TRUST_STABILITY_RUNS)), 0)
    except (TypeError, ValueError):  # the form's raw text: the job's validation says what is wrong
        stability_runs = settings.EXPLAINER_TRUST_STABILITY_RUNS
    n_train = training_rows(n_rows, test_size)
    runs = {}
    for key in classifiers:
        rates = classifier_rates(key, modality)
        row_seconds = {e: rates.row_seconds.get(e, UNKNOWN_ROW_SECONDS)
                       * explainer_scale(e, params.get(e) or {}, modality, stability_runs) for e in explainers}
        n = (rows_by_classifier or {}).get(key, rows)
        global_views = rates.global_views
        if modality == "image":
            global_views += image_trust_seconds(rates=rates, explainers=explainers, params=params, trust=trust,
                                                n_rows=n_rows, rows=n, test_size=test_size)
        runs[key] = RunPlan(train=TRAIN_SECONDS + rates.train_per_1000_rows * n_train / 1000, row_seconds=row_seconds, rows=n,
                            global_views=global_views, measured=rates.measured)
    from explanations.whatifs import WHATIF_ROWS_MAX

    whatif = 0.0 if modality != "tabular" else WHATIF_SECONDS + WHATIF_ROW_SECONDS * min(rows, WHATIF_ROWS_MAX)
    return JobPlan(runs=runs, finish=whatif + PACKING_SECONDS, rows=rows)


def image_trust_seconds(*, rates: ClassifierRates, explainers: list[str], params: dict, trust: dict, n_rows: int,
                        rows: int, test_size: float) -> float:
    """An image run's sanity check and ROAR: the images each explainer explains again (no reruns, no plots) and
    the CNN trained again on ROAR's training images."""
    try:
        options = {"sanity_images": int(trust.get("sanity_images", settings.EXPLAINER_TRUST_SANITY_IMAGES)),
                   "roar_images": int(trust.get("roar_images", settings.EXPLAINER_TRUST_ROAR_IMAGES))}
    except (TypeError, ValueError):  # the form's raw text: the job's validation says what is wrong
        options = {"sanity_images": settings.EXPLAINER_TRUST_SANITY_IMAGES, "roar_images": settings.EXPLAINER_TRUST_ROAR_IMAGES}
    again = image_trust_images(n_rows=n_rows, trust=options, rows=rows, test_size=test_size)
    per_image = sum(rates.row_seconds.get(e, UNKNOWN_ROW_SECONDS) * EXPLAIN_SHARE
                    * explainer_scale(e, params.get(e) or {}, "image", 0) for e in explainers)
    roar_train = min(options["roar_images"], n_rows)
    retrain = roar_retrainings(len(explainers)) * rates.train_per_1000_rows * roar_train / 1000 if roar_train >= 10 else 0.0
    return again * per_image + retrain


def rows_count(*, n_rows: int, rows: dict, test_size: float) -> int:
    """How many rows a row spec explains (never NaN: the whole test set is the dataset's rows × the test split)."""
    n_test = min(max(math.ceil(n_rows * test_size), 1), settings.EXPLAINER_MAX_TEST_ROWS, settings.EXPLAINER_MAX_JOB_ROWS)
    if "any_of" in rows and isinstance(rows["any_of"], list):
        return min(sum(rows_count(n_rows=n_rows, rows=part, test_size=test_size) for part in rows["any_of"]
                       if isinstance(part, dict)), n_test)
    if isinstance(rows.get("ids"), list):
        return len(rows["ids"])
    if isinstance(rows.get("names"), list):
        return len(rows["names"])
    if rows.get("all_test"):
        return n_test
    for key in ("random", "misclassified"):
        if key in rows:
            try:
                return max(min(int(rows[key]), n_test), 0)
            except (TypeError, ValueError):
                return 0
    return 0


def job_plan(job, *, with_history: bool = True) -> JobPlan:
    """The plan of a job that exists: its runs' resolved rows once known, the account's history applied."""
    runs = list(job.runs.all())
    n_rows = job.dataset.n_rows or 0
    rows = rows_count(n_rows=n_rows, rows=job.rows_spec or {}, test_size=float(job.params.get("test_size", 0.25)))
    resolved = {r.classifier: len(r.rows) for r in runs if r.rows}
    plan = plan_build(schema=job.schema, n_rows=n_rows, classifiers=list(job.classifiers), explainers=list(job.explainers),
                      rows=rows, params=job.params, rows_by_classifier=resolved)
    if with_history:
        plan.factor = history_factor(owner_id=job.owner_id, before_id=job.pk)
    return plan


def history_factor(*, owner_id: int | None, before_id: int | None = None) -> float:
    """Median of actual ÷ estimated seconds over the account's last finished jobs (1 when it has none)."""
    from explanations.models import Job, JobStatus

    if owner_id is None:
        return 1.0
    jobs = (Job.objects.filter(owner_id=owner_id, status=JobStatus.SUCCEEDED, started_at__isnull=False,
                               finished_at__isnull=False).select_related("dataset").prefetch_related("runs"))
    if before_id is not None:
        jobs = jobs.filter(pk__lt=before_id)
    ratios = []
    for old in jobs.order_by("-finished_at")[:HISTORY_JOBS]:
        estimated = job_plan(old, with_history=False).total
        actual = (old.finished_at - old.started_at).total_seconds()
        if estimated > 0 and actual > 0:
            ratios.append(actual / estimated)
    if not ratios:
        return 1.0
    low, high = HISTORY_FACTOR_BOUNDS
    return min(max(statistics.median(ratios), low), high)


def form_estimate(*, dataset, owner, classifiers: list[str], explainers: list[str], rows: dict, params: dict) -> dict:
    """What the job form shows: the seconds, a sentence, and whether it is large (over 10 minutes)."""
    test_size = _fraction(params.get("test_size"), 0.25)
    n_rows = dataset.n_rows or 0
    rows_n = rows_count(n_rows=n_rows, rows=rows or {}, test_size=test_size)
    plan = plan_build(schema=dataset.schema, n_rows=n_rows, classifiers=classifiers, explainers=explainers, rows=rows_n,
                      params={**params, "test_size": test_size})
    plan.factor = history_factor(owner_id=getattr(owner, "pk", None))
    seconds = plan.total if classifiers and explainers else 0.0
    text = (f"{len(classifiers)} classifier{'s' if len(classifiers) != 1 else ''} × {len(explainers)} explainer"
            f"{'s' if len(explainers) != 1 else ''} × {rows_n:,} row{'s' if rows_n != 1 else ''} ≈ {duration_words(seconds)}"
            " on one worker")
    basis = ("from this machine's measured rates, corrected by your finished jobs" if plan.factor != 1.0
             else "from this machine's measured rates")
    return {"seconds": round(seconds, 1), "rows": rows_n, "text": text, "basis": basis, "large": seconds > 600,
            "factor": round(plan.factor, 3)}


def _fraction(value, default: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if 0.05 <= number <= 0.5 else default


def duration_words(seconds: float) -> str:
    """``≈ 40 s``, ``≈ 3 min``, ``≈ 2.5 h``: one unit, rounded as people say it."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"
