"""A finished job whose trust table holds every tabular score (issue 17, item 10: 13 columns side by side hid four
behind a scrollbar at 1366 px), written straight to the database: no model is trained to draw a table."""

from __future__ import annotations

SCORES = {  # what each tabular explainer is measured on (explanations.ml.trust): 14 scores in all
    "lime": ("deletion_auc", "insertion_auc", "faithfulness", "stability_jaccard", "stability_rank_corr", "agreement"),
    "shap": ("deletion_auc", "insertion_auc", "faithfulness", "stability_jaccard", "stability_rank_corr", "agreement",
             "additivity_error"),
    "anchor": ("precision_fresh", "coverage_fresh", "agreement"),
    "counterfactual": ("counterfactual_validity", "counterfactual_proximity", "counterfactual_sparsity",
                       "counterfactual_diversity", "counterfactual_plausibility"),
}
CLASSIFIERS = ("random_forest", "logistic_regression")


def trust_job_seed(*, owner, dataset, rows: int = 4):
    """A succeeded job of two classifiers x four explainers, each row's trust made up but plausible."""
    from explanations.models import Explanation, Job

    job = Job.objects.create(owner=owner, dataset=dataset, classifiers=list(CLASSIFIERS), explainers=list(SCORES),
                             rows_spec={"random": rows, "seed": 0}, params={"seed": 0, "test_size": 0.25},
                             schema=dataset.schema, status="succeeded")
    classes = list((dataset.schema.get("class_names") or {"0": "No", "1": "Yes"}).values())[:2] or ["No", "Yes"]
    explanations = []
    for c, classifier in enumerate(CLASSIFIERS):
        job.runs.create(classifier=classifier, status="done", metrics={"accuracy": 0.8 + c / 20, "macro_f1": 0.78})
        for e, (explainer, keys) in enumerate(SCORES.items()):
            for row in range(rows):
                trust = {key: round(0.1 + 0.07 * ((row + e + c + i) % 9), 3) for i, key in enumerate(keys)}
                if "additivity_error" in trust:
                    trust["additivity_error"] = 0.00032
                explanations.append(Explanation(job=job, classifier=classifier, explainer=explainer, row=row,
                                                true_label=classes[0], predicted=classes[row % 2],
                                                probabilities={classes[0]: 0.6, classes[-1]: 0.4}, data={},
                                                trust=trust))
    Explanation.objects.bulk_create(explanations)
    return job
