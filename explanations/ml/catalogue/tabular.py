"""The explainers and classifiers of tables: the model-agnostic methods, and the gradient methods of the MLP."""

from __future__ import annotations

from explanations.ml.catalogue.registry import EXPLAINERS_PACKAGE as _PACKAGE
from explanations.ml.catalogue.registry import ClassifierSpec, ExplainerEntry, rule_search_samples
from explanations.ml.params import Param

TABULAR_EXPLAINERS: tuple[ExplainerEntry, ...] = (
    ExplainerEntry(
        'lime', 'tabular', 'LIME',
        'LIME: fits a simple model around one row to see which features drive its prediction.',
        (Param('num_features', 'Features to show', 5, min=1, max=30),
         Param('num_samples', 'Perturbed samples per row', 1000, min=100, max=50000, help='More samples give steadier weights but take longer.'),
         Param('top_labels', 'Classes explained', 1, min=1, max=10, help='Also explain the next most probable classes (on the same samples), to see why not them; the picture shows the predicted class, the exports all of them.'),
         Param('discretize_continuous', 'Bin numeric features', True, kind='bool', help='Explain numbers as ranges such as 28 < age <= 37.'),
         Param('shared_samples', 'One set of samples for all rows', True, kind='bool', help="The model scores one set of perturbed samples for the whole job instead of a new set per row, which is many times faster. LIME draws these samples without looking at the row, so each row's explanation is still a LIME explanation, but rows share the same random draw. Turn off to draw new samples for every row, as the lime library does.")),
        f"{_PACKAGE}.lime:LimeExplainer", global_view="importance",
        params_before=(("shared_samples", False),)),  # jobs made before one draw served every row drew their own
    ExplainerEntry(
        'anchor', 'tabular', 'Anchors',
        'Anchors: finds a short IF-THEN rule under which the model almost always gives the same answer.',
        (Param('threshold', 'Required precision', 0.95, kind='float', min=0.5, max=1.0, help='How often the rule must give the same answer, e.g. 0.95 = 95% of the time.'),
         Param('max_anchor_size', 'Maximum conditions', 0, min=0, max=20, help='0 means no limit.'),
         Param('beam_size', 'Candidate rules kept', 4, min=1, max=20),
         Param('batch_size', 'Samples per round', 100, min=10, max=1000)),
        f"{_PACKAGE}.anchors:AnchorExplainer", result_kind="rule", samples_per_row=rule_search_samples),
    ExplainerEntry(
        'shap', 'tabular', 'SHAP',
        'SHAP: splits the prediction fairly among the features, showing how much each one added or took away.',
        (Param('algorithm', 'Algorithm', 'auto', kind='choice', choices=('auto', 'tree', 'kernel', 'permutation', 'linear'), help="'auto' uses the exact method for tree and linear models, else the kernel method."),
         Param('background_size', 'Background rows', 100, min=10, max=1000, help="Training rows used as the 'average' to compare against."),
         Param('nsamples', 'Model calls per row', 500, min=50, max=20000, help='For the kernel and permutation methods: more calls, steadier values.')),
        f"{_PACKAGE}.shap:ShapExplainer", global_view="summary"),
    ExplainerEntry(
        'counterfactual', 'tabular', 'Counterfactuals',
        'Counterfactuals: the smallest changes to the row that would make the model predict another class.',
        (Param('num_counterfactuals', 'Counterfactuals per row', 4, min=1, max=10, help='How many different ways to reach the other class to show.'),
         Param('desired_class', 'Desired class', '', kind='text', help='The class the changes should reach; empty means the most likely other class.'),
         Param('fixed_features', 'Features that must not change', 'protected', kind='features', help='These features never change. Columns that look like age, sex or gender, race or ethnicity, marital status or nationality start ticked: a person cannot change them, and advice that hinges on them is unfair. Untick one to let it change.'),
         Param('bounds', 'Bounds for numeric features', None, kind='bounds', help='One line per feature as “name: low, high” (a side may stay empty); otherwise a feature stays within the range seen in the data.'),
         Param('num_samples', 'Random candidates per row', 1000, min=100, max=20000, help='More candidates find closer counterfactuals but take longer.')),
        f"{_PACKAGE}.counterfactual:CounterfactualExplainer", offered_by_default=False, detail_name='counterfactuals'),
)

# The MLP's gradient methods; listed after the images' entries of the same keys, which speak for the keys in lists.
NETWORK_EXPLAINERS: tuple[ExplainerEntry, ...] = (
    ExplainerEntry(
        'saliency', 'tabular', 'Saliency',
        "Saliency: how strongly the network's score reacts to each column (the gradient's size).",
        (Param('num_features', 'Features to show', 8, min=1, max=30),),
        f"{_PACKAGE}.torch_tabular:SaliencyTabularExplainer", model_kinds=('mlp',), offered_by_default=False),
    ExplainerEntry(
        'input_x_gradient', 'tabular', 'Input × gradient',
        "Input × gradient: each (scaled) value times the gradient of the network's score.",
        (Param('num_features', 'Features to show', 8, min=1, max=30),),
        f"{_PACKAGE}.torch_tabular:InputXGradientTabularExplainer", model_kinds=('mlp',), offered_by_default=False),
    ExplainerEntry(
        'deeplift', 'tabular', 'DeepLIFT',
        "DeepLIFT: shares the gap between this row's score and a starting row's out among the columns.",
        (Param('baseline', 'Starting point', 'zero', kind='choice', choices=('zero', 'mean'), help='What the input is compared with: all zeros (a black image, every column at zero after scaling) or the average training input.'),
         Param('num_features', 'Features to show', 8, min=1, max=30)),
        f"{_PACKAGE}.torch_tabular:DeepLiftTabularExplainer", model_kinds=('mlp',), offered_by_default=False),
    ExplainerEntry(
        'integrated_gradients', 'tabular', 'Integrated Gradients',
        "Integrated Gradients: adds up the network's gradients on the way from a starting row to this one.",
        (Param('steps', 'Steps along the path', 50, min=8, max=500, help='More steps make the attributions add up more exactly to the score.'),
         Param('baseline', 'Starting point', 'zero', kind='choice', choices=('zero', 'mean'), help='What the input is compared with: all zeros (a black image, every column at zero after scaling) or the average training input.'),
         Param('num_features', 'Features to show', 8, min=1, max=30)),
        f"{_PACKAGE}.torch_tabular:IntegratedGradientsTabularExplainer", model_kinds=('mlp',), offered_by_default=False),
    ExplainerEntry(
        'gradient_shap', 'tabular', 'Gradient SHAP',
        'Gradient SHAP (expected gradients): averages the gradients on paths from training rows to this one.',
        (Param('background_size', 'Background rows', 50, min=5, max=500),
         Param('nsamples', 'Samples per row', 200, min=10, max=5000, help='Gradient evaluations averaged per row; more give steadier values.'),
         Param('num_features', 'Features to show', 8, min=1, max=30)),
        f"{_PACKAGE}.torch_tabular:GradientShapTabularExplainer", model_kinds=('mlp',), offered_by_default=False),
    ExplainerEntry(
        'smoothgrad', 'tabular', 'SmoothGrad',
        'SmoothGrad: saliency or Integrated Gradients averaged over noisy copies of the row.',
        (Param('inner', 'Smoothed method', 'saliency', kind='choice', choices=('saliency', 'integrated_gradients'), help='The map that is averaged over noisy copies of the input.'),
         Param('nt_samples', 'Noisy copies', 20, min=2, max=500, help='More copies give a smoother map but take longer.'),
         Param('noise_level', 'Noise level', 0.15, kind='float', min=0.0, max=1.0, help="Standard deviation of the added noise, as a fraction of the input's range."),
         Param('num_features', 'Features to show', 8, min=1, max=30)),
        f"{_PACKAGE}.torch_tabular:SmoothGradTabularExplainer", model_kinds=('mlp',), offered_by_default=False),
)

_BUILD = "explanations.ml.pipelines"
_MAX_DEPTH_HELP = "0 means no limit."


def boosting_params(max_depth: int) -> tuple[Param, ...]:
    """XGBoost's and LightGBM's settings (they differ only in the depth they grow by default)."""
    return (
        Param("n_estimators", "Number of trees", 200, min=10, max=2000),
        Param("max_depth", "Maximum tree depth", max_depth, min=1, max=16),
        Param("learning_rate", "Learning rate", 0.1, kind="float", min=1e-3, max=1.0,
              help="Smaller values learn more slowly and need more trees."),
    )


TABULAR_CLASSIFIERS: tuple[ClassifierSpec, ...] = (
    ClassifierSpec(
        "random_forest", "tabular", "Random forest", "Random forest: many decision trees vote on the answer.",
        (Param("n_estimators", "Number of trees", 200, min=10, max=1000),
         Param("max_depth", "Maximum tree depth", 0, min=0, max=100, help=_MAX_DEPTH_HELP)),
        "celery", "tree", f"{_BUILD}:random_forest"),
    ClassifierSpec(
        "logistic_regression", "tabular", "Logistic regression",
        "Logistic regression: adds up a weight per feature; simple and easy to read.",
        (Param("C", "Inverse regularisation strength", 1.0, kind="float", min=1e-4, max=1e4,
               help="Smaller values give a simpler model."),
         Param("max_iter", "Maximum iterations", 1000, min=100, max=10000)),
        "celery", "linear", f"{_BUILD}:logistic_regression"),
    ClassifierSpec(
        "svm", "tabular", "Support vector machine",
        "Support vector machine: draws a curved boundary that separates the classes widely.",
        (Param("C", "Inverse regularisation strength", 1.0, kind="float", min=1e-3, max=1e3,
               help="Smaller values give a smoother boundary."),
         Param("gamma", "Kernel width", "scale", kind="choice", choices=("scale", "auto"))),
        "celery", "other", f"{_BUILD}:svm"),
    ClassifierSpec(
        "gradient_boosting", "tabular", "Gradient boosting",
        "Gradient boosting: small trees added one by one, each fixing the last one's mistakes.",
        (Param("n_estimators", "Number of trees", 100, min=10, max=1000),
         Param("learning_rate", "Learning rate", 0.1, kind="float", min=1e-3, max=1.0),
         Param("max_depth", "Maximum tree depth", 3, min=1, max=10)),
        "celery", "tree", f"{_BUILD}:gradient_boosting"),
    ClassifierSpec(
        "xgboost", "tabular", "XGBoost", "XGBoost: gradient-boosted trees from the XGBoost library, strong on tables.",
        boosting_params(6), "celery", "tree", f"{_BUILD}:xgboost"),
    ClassifierSpec(
        "lightgbm", "tabular", "LightGBM",
        "LightGBM: fast gradient-boosted trees that grow leaf by leaf, strong on large tables.",
        boosting_params(8), "celery", "tree", f"{_BUILD}:lightgbm"),
    ClassifierSpec(
        "knn", "tabular", "Nearest neighbours", "Nearest neighbours: looks at the most similar rows and copies their answer.",
        (Param("n_neighbors", "Number of neighbours", 5, min=1, max=100),
         Param("weights", "Neighbour weights", "uniform", kind="choice", choices=("uniform", "distance"),
               help="'distance' lets closer neighbours count more.")),
        "celery", "other", f"{_BUILD}:knn"),
    ClassifierSpec(
        "decision_tree", "tabular", "Decision tree", "Decision tree: a flowchart of yes/no questions about the features.",
        (Param("max_depth", "Maximum depth", 0, min=0, max=100, help=_MAX_DEPTH_HELP),
         Param("min_samples_leaf", "Minimum rows per leaf", 1, min=1, max=1000)),
        "celery", "tree", f"{_BUILD}:decision_tree"),
    ClassifierSpec(
        "naive_bayes", "tabular", "Naive Bayes", "Naive Bayes: combines how typical each feature value is of each class.",
        (Param("var_smoothing", "Variance smoothing", 1e-9, kind="float", min=1e-12, max=1.0),),
        "celery", "other", f"{_BUILD}:naive_bayes"),
    ClassifierSpec(
        "mlp", "tabular", "Neural network",
        "Neural network: a small multi-layer perceptron trained with PyTorch (uses a GPU when there is one).",
        (Param("hidden_units", "Hidden units per layer", 64, min=4, max=1024),
         Param("epochs", "Training epochs", 60, min=1, max=1000),
         Param("learning_rate", "Learning rate", 0.01, kind="float", min=1e-5, max=1.0)),
        "gpu", "other", "explanations.ml.torch_mlp:mlp"),
)
