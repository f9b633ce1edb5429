"""What the app offers: one entry per explainer and classifier variant, and nothing numeric.

The web side (forms, views, the API, job validation, the quotas) reads everything it shows or checks from
here: key, kind of data, label, one-line description, parameters with their bounds and help. An entry names
its implementation as ``"module:Class"`` (or ``"module:function"`` for a classifier's builder), imported by
``entry.load()`` where a job runs, so the web process never imports numpy's heavy neighbours (scikit-learn,
shap, lime, anchor-exp, torch, numba, matplotlib) nor an explainer's module. The implementation classes read
their key, label, description, parameters and modalities back from their entries
(``explanations.ml.explainers.base.BaseExplainer``): this file is the one place they are written.

Adding an explainer is its module and one ``ExplainerEntry`` line in ``EXPLAINER_ENTRIES`` (the README's
"How to add an explainer"); a classifier is a builder function and one ``ClassifierSpec`` in
``CLASSIFIER_ENTRIES``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from explanations.ml.errors import UnknownExplainerError
from explanations.ml.params import Param

MODALITIES = ("tabular", "text", "image")

# Model evaluations per row for an explainer whose parameters name no sample count (about one LIME).
SAMPLES_DEFAULT = 1000
SAMPLE_PARAMS = ("num_samples", "nsamples", "steps")
# A rule search draws ``batch_size`` samples for each of ``beam_size`` candidate rules over a few rounds.
RULE_SEARCH_ROUNDS = 5


def sample_count(params: dict[str, Any]) -> int:
    """Model evaluations per row: the ``num_samples``/``nsamples``/``steps`` parameter, else ``SAMPLES_DEFAULT``."""
    for name in SAMPLE_PARAMS:
        if name in params:
            return max(int(params[name]), 1)
    return SAMPLES_DEFAULT


def rule_search_samples(params: dict[str, Any]) -> int:
    """Model evaluations per row of an anchors-style beam search, for the job quotas."""
    return max(int(params.get("batch_size", 100)) * int(params.get("beam_size", 1)) * RULE_SEARCH_ROUNDS, 1)


def implementation_load(path: str) -> Any:
    """``"package.module:Name"`` imported now."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class ExplainerEntry:
    """One explainer on one kind of data: what a form shows and checks, and where the class is."""

    key: str
    modality: str  # "tabular" | "text" | "image"
    label: str
    description: str
    params: tuple[Param, ...]
    implementation: str  # "module:Class", a ``BaseExplainer`` subclass
    # "attributions" (signed values per feature, word or region towards a class) or "rule" (precision, coverage).
    result_kind: str = "attributions"
    # Classifier keys whose fitted models it needs (gradients need the torch network); () for any model.
    model_kinds: tuple[str, ...] = ()
    # Model evaluations one row costs with these cleaned parameters (the job quotas add them up).
    samples_per_row: Callable[[dict[str, Any]], int] = sample_count
    # Ticked on the job form to start with (False: a question of its own, asked on purpose).
    offered_by_default: bool = True
    # The name of the extra table the row page shows and the extra CSV in the ZIP ("": none); the class draws them.
    detail_name: str = ""

    @property
    def classifiers(self) -> tuple[str, ...]:
        """The classifier keys it can explain (``()``: any); the class reads it as ``classifiers``."""
        return self.model_kinds

    @property
    def modalities(self) -> tuple[str, ...]:
        """Every kind of data this key explains (the API's ``modalities``)."""
        return tuple(explainer_modalities(self.key))

    def load(self) -> type:
        return implementation_load(self.implementation)


@dataclass(frozen=True)
class ClassifierSpec:
    """One classifier on one kind of data: everything the app needs to offer and configure it, and its builder."""

    key: str
    modality: str  # what it learns from: "tabular" (the encoded table), "text" (the raw messages), "image" (pixels)
    label: str
    description: str
    params: tuple[Param, ...]
    queue: str  # "gpu" for torch models, else "celery"
    family: str  # "tree" | "linear" | "other"
    builder: str  # "module:function" taking (cleaned params, FeatureSpace, seed), returning an unfitted model

    @property
    def modalities(self) -> tuple[str, ...]:
        """Every kind of data this key learns from (the API's ``modalities``)."""
        return tuple(classifier_modalities(self.key))

    def load(self) -> Callable[..., Any]:
        return implementation_load(self.builder)


SEGMENTATIONS = ("quickshift", "slic", "felzenszwalb")
# The image explainers that only call the model (no gradients): all an uploaded ONNX graph allows. SHAP then
# runs as Kernel SHAP over superpixels.
IMAGE_EXPLAINERS_CALLING_ONLY = ("lime", "anchor", "shap", "occlusion", "rise")
_PACKAGE = "explanations.ml.explainers"

# One line per explainer and kind of data; a key's first entry speaks for the key in lists.
# How the image explainers that work on superpixels cut an image (scikit-image's segmentations).
SEGMENTATION_PARAMS = (
    Param('segmentation', 'Superpixels', 'quickshift', kind='choice', choices=('quickshift', 'slic', 'felzenszwalb'), help='How the image is cut into regions (scikit-image).'),
    Param('kernel_size', 'Quickshift kernel size', 0.0, kind='float', min=0.0, max=50.0, help='Quickshift: the width of the smoothing kernel; larger gives fewer, bigger regions. 0: scaled to the image.'),
    Param('max_dist', 'Quickshift maximum distance', 0.0, kind='float', min=0.0, max=500.0, help='Quickshift: how far apart pixels of one region may be; larger gives bigger regions. 0: scaled to the image.'),
    Param('ratio', 'Quickshift colour/space ratio', 0.5, kind='float', min=0.0, max=1.0, help='Quickshift: between 0 and 1; higher weighs colour over position.'),
    Param('n_segments', 'SLIC regions', 0, min=0, max=1000, help='SLIC: about how many regions. 0: scaled to the image.'),
    Param('compactness', 'SLIC compactness', 0.1, kind='float', min=0.001, max=100.0, help='SLIC: higher gives squarer regions, lower follows edges more.'),
)
# Every image explainer that maps a chosen class takes this one (-1: the predicted class).
TARGET_PARAM = Param('target', 'Class to explain', -1, min=-1, max=10000, help='The class code whose evidence is mapped (0 is the first class); -1 means the predicted class.')


EXPLAINER_ENTRIES: tuple[ExplainerEntry, ...] = (
    ExplainerEntry(
        'lime', 'tabular', 'LIME',
        'LIME: fits a simple model around one row to see which features drive its prediction.',
        (Param('num_features', 'Features to show', 5, min=1, max=30),
         Param('num_samples', 'Perturbed samples per row', 1000, min=100, max=50000, help='More samples give steadier weights but take longer.'),
         Param('top_labels', 'Classes explained', 1, min=1, max=10, help='Also explain the next most probable classes (on the same samples), to see why not them; the picture shows the predicted class, the exports all of them.'),
         Param('discretize_continuous', 'Bin numeric features', True, kind='bool', help='Explain numbers as ranges such as 28 < age <= 37.'),
         Param('shared_samples', 'One set of samples for all rows', True, kind='bool', help="The model scores one set of perturbed samples for the whole job instead of a new set per row, which is many times faster. LIME draws these samples without looking at the row, so each row's explanation is still a LIME explanation, but rows share the same random draw. Turn off to draw new samples for every row, as the lime library does.")),
        f"{_PACKAGE}.lime:LimeExplainer"),
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
        f"{_PACKAGE}.shap:ShapExplainer"),
    ExplainerEntry(
        'counterfactual', 'tabular', 'Counterfactuals',
        'Counterfactuals: the smallest changes to the row that would make the model predict another class.',
        (Param('num_counterfactuals', 'Counterfactuals per row', 4, min=1, max=10, help='How many different ways to reach the other class to show.'),
         Param('desired_class', 'Desired class', '', kind='text', help='The class the changes should reach; empty means the most likely other class.'),
         Param('fixed_features', 'Features that must not change', 'protected', kind='features', help='These features never change. Columns that look like age, sex or gender, race or ethnicity, marital status or nationality start ticked: a person cannot change them, and advice that hinges on them is unfair. Untick one to let it change.'),
         Param('bounds', 'Bounds for numeric features', None, kind='bounds', help='One line per feature as “name: low, high” (a side may stay empty); otherwise a feature stays within the range seen in the data.'),
         Param('num_samples', 'Random candidates per row', 1000, min=100, max=20000, help='More candidates find closer counterfactuals but take longer.')),
        f"{_PACKAGE}.counterfactual:CounterfactualExplainer", offered_by_default=False, detail_name='counterfactuals'),
    ExplainerEntry(
        'lime', 'text', 'LIME',
        'LIME for text: drops words at random and fits a simple model to see which words drive the prediction.',
        (Param('num_features', 'Words to show', 10, min=1, max=40),
         Param('num_samples', 'Perturbed messages per row', 1000, min=100, max=20000, help='More samples give steadier weights but take longer.')),
        f"{_PACKAGE}.text:LimeTextExplainer"),
    ExplainerEntry(
        'anchor', 'text', 'Anchors',
        'Anchors for text: the fewest words that keep the prediction, whatever happens to the other words.',
        (Param('threshold', 'Required precision', 0.95, kind='float', min=0.5, max=1.0, help="How often the prediction must hold when the anchor's words are kept."),
         Param('max_anchor_size', 'Maximum words', 0, min=0, max=20, help='0 means no limit.'),
         Param('beam_size', 'Candidate rules kept', 4, min=1, max=20),
         Param('batch_size', 'Samples per round', 10, min=5, max=50, help='Messages drawn each time a candidate is checked.')),
        f"{_PACKAGE}.text:AnchorTextExplainer", result_kind="rule", samples_per_row=rule_search_samples),
    ExplainerEntry(
        'shap', 'text', 'SHAP',
        'SHAP for text: shares the prediction out among the words, hiding groups of words to measure each one.',
        (Param('num_features', 'Words to show', 10, min=1, max=40),
         Param('nsamples', 'Model calls per row', 500, min=50, max=20000, help='More calls give finer attributions for long messages.')),
        f"{_PACKAGE}.text:ShapTextExplainer"),
    ExplainerEntry(
        'lime', 'image', 'LIME',
        'LIME for images: hides superpixels at random and fits a simple model to see which regions matter.',
        (*SEGMENTATION_PARAMS,
         Param('num_samples', 'Perturbed images per row', 500, min=50, max=10000, help='More samples give steadier weights but take longer.'),
         Param('num_features', 'Regions to show', 5, min=1, max=30, help="The strongest regions kept in the 'top regions' view; the rest is greyed out."),
         TARGET_PARAM),
        f"{_PACKAGE}.image:LimeImageExplainer"),
    ExplainerEntry(
        'anchor', 'image', 'Anchors',
        'Anchors for images: the fewest superpixels that keep the prediction when the rest are blurred out.',
        (*SEGMENTATION_PARAMS,
         Param('threshold', 'Required precision', 0.95, kind='float', min=0.5, max=1.0),
         Param('max_anchor_size', 'Maximum regions', 0, min=0, max=20, help='0 means no limit.'),
         Param('batch_size', 'Samples per round', 20, min=5, max=100)),
        f"{_PACKAGE}.image:AnchorImageExplainer", result_kind="rule", samples_per_row=rule_search_samples),
    ExplainerEntry(
        'shap', 'image', 'SHAP',
        "SHAP for images (DeepExplainer): shares each class's score out among the pixels, compared with typical training images.",
        (Param('background_size', 'Background images', 50, min=5, max=500, help='Training images the attributions are measured against (deep).'),
         Param('algorithm', 'Algorithm', 'deep', kind='choice', choices=('deep', 'kernel'), help="deep: DeepExplainer on the CNN's layers; kernel: Kernel SHAP over superpixels, hiding regions as LIME does (the model is only called)."),
         Param('nsamples', 'Samples per image (kernel)', 500, min=50, max=10000, help='Kernel SHAP: masked images per image; more give steadier values.'),
         *SEGMENTATION_PARAMS,
         TARGET_PARAM),
        f"{_PACKAGE}.image:DeepShapExplainer"),
    ExplainerEntry(
        'gradient_shap', 'image', 'Gradient SHAP',
        "Gradient SHAP (expected gradients): averages the CNN's gradients along paths from training images to this one.",
        (Param('background_size', 'Background images', 50, min=5, max=500),
         Param('nsamples', 'Samples per image', 200, min=10, max=5000, help='Gradient evaluations averaged per image; more give smoother maps.'),
         TARGET_PARAM),
        f"{_PACKAGE}.image:GradientShapExplainer"),
    ExplainerEntry(
        'integrated_gradients', 'image', 'Integrated Gradients',
        "Integrated Gradients: adds up the CNN's gradients on the straight path from a blank image to this one.",
        (Param('steps', 'Steps along the path', 50, min=8, max=500, help='More steps make the attributions add up more exactly to the score.'),
         Param('baseline', 'Starting image', 'black', kind='choice', choices=('black', 'mean'), help="'mean' starts from the average training image."),
         TARGET_PARAM),
        f"{_PACKAGE}.image:IntegratedGradientsExplainer"),
    ExplainerEntry(
        'saliency', 'image', 'Saliency',
        "Saliency: how strongly each pixel's gradient moves the class score (its size, not its direction).",
        (TARGET_PARAM,),
        f"{_PACKAGE}.gradients:SaliencyExplainer", offered_by_default=False),
    ExplainerEntry(
        'input_x_gradient', 'image', 'Input × gradient',
        "Input × gradient: each pixel's value times the gradient of the class score.",
        (TARGET_PARAM,),
        f"{_PACKAGE}.gradients:InputXGradientExplainer", offered_by_default=False),
    ExplainerEntry(
        'deeplift', 'image', 'DeepLIFT',
        'DeepLIFT: shares the difference between the class score and the score of a starting image out among the pixels, layer by layer.',
        (Param('baseline', 'Starting point', 'zero', kind='choice', choices=('zero', 'mean'), help='What the input is compared with: all zeros (a black image, every column at zero after scaling) or the average training input.'),
         TARGET_PARAM),
        f"{_PACKAGE}.gradients:DeepLiftExplainer", offered_by_default=False),
    ExplainerEntry(
        'deeplift_shap', 'image', 'DeepLIFT SHAP',
        'DeepLIFT SHAP: DeepLIFT averaged over many training images as starting points (SHAP values).',
        (Param('background_size', 'Background images', 20, min=2, max=200, help='Training images used as starting points; the cost grows with them.'),
         TARGET_PARAM),
        f"{_PACKAGE}.gradients:DeepLiftShapExplainer", offered_by_default=False),
    ExplainerEntry(
        'smoothgrad', 'image', 'SmoothGrad',
        'SmoothGrad: a saliency or Integrated Gradients map averaged over noisy copies of the image.',
        (Param('inner', 'Smoothed method', 'saliency', kind='choice', choices=('saliency', 'integrated_gradients'), help='The map that is averaged over noisy copies of the input.'),
         Param('nt_samples', 'Noisy copies', 20, min=2, max=500, help='More copies give a smoother map but take longer.'),
         Param('noise_level', 'Noise level', 0.15, kind='float', min=0.0, max=1.0, help="Standard deviation of the added noise, as a fraction of the input's range."),
         TARGET_PARAM),
        f"{_PACKAGE}.gradients:SmoothGradExplainer", offered_by_default=False),
    ExplainerEntry(
        'grad_cam', 'image', 'Grad-CAM',
        'Grad-CAM: which areas the last convolutional layer looks at for the class, upsampled onto the image.',
        (TARGET_PARAM,),
        f"{_PACKAGE}.cam:GradCamExplainer", offered_by_default=False),
    ExplainerEntry(
        'guided_grad_cam', 'image', 'Guided Grad-CAM',
        "Guided Grad-CAM: Grad-CAM's areas sharpened to pixels by guided backpropagation.",
        (TARGET_PARAM,),
        f"{_PACKAGE}.cam:GuidedGradCamExplainer", offered_by_default=False),
    ExplainerEntry(
        'occlusion', 'image', 'Occlusion',
        'Occlusion: slides a blank square over the image and records how much the class score drops.',
        (Param('window', 'Window (pixels)', 4, min=1, max=64, help='The side of the square that is blanked out.'),
         Param('stride', 'Stride (pixels)', 2, min=1, max=64, help='How far the square moves each step; smaller is finer and slower.'),
         Param('baseline', 'Starting point', 'zero', kind='choice', choices=('zero', 'mean'), help='What the input is compared with: all zeros (a black image, every column at zero after scaling) or the average training input.'),
         TARGET_PARAM),
        f"{_PACKAGE}.perturbation:OcclusionExplainer", offered_by_default=False),
    ExplainerEntry(
        'rise', 'image', 'RISE',
        'RISE: shows the model the image through many random masks and scores each pixel by the class probability when it is visible.',
        (Param('num_masks', 'Random masks', 1000, min=50, max=20000, help='More masks give a steadier map but take longer.'),
         Param('cells', 'Mask grid cells', 7, min=2, max=32, help='Each mask is a grid of this many cells a side, smoothed.'),
         Param('probability', 'Share shown', 0.5, kind='float', min=0.05, max=0.95, help='The chance that a cell of a mask shows the image.'),
         TARGET_PARAM),
        f"{_PACKAGE}.perturbation:RiseExplainer", offered_by_default=False),
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
_C_HELP = "Smaller values give a simpler model that relies on fewer words."

# One line per classifier and kind of data (a key such as "svm" learns from tables and texts alike).
CLASSIFIER_ENTRIES: tuple[ClassifierSpec, ...] = (
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
    ClassifierSpec(
        "cnn", "image", "Convolutional network",
        "Convolutional network: a small PyTorch CNN that learns shapes in images (uses a GPU when there is one).",
        (Param("epochs", "Training epochs", 5, min=1, max=100),
         Param("learning_rate", "Learning rate", 0.003, kind="float", min=1e-5, max=1.0),
         Param("channels", "Filters in the first layer", 16, min=4, max=128, help="The second layer has twice as many.")),
        "gpu", "other", "explanations.ml.torch_cnn:cnn"),
    ClassifierSpec(
        "logistic_regression", "text", "Logistic regression",
        "Logistic regression on word frequencies (TF-IDF): a weight per word, easy to read.",
        (Param("C", "Inverse regularisation strength", 10.0, kind="float", min=1e-4, max=1e4, help=_C_HELP),
         Param("max_iter", "Maximum iterations", 1000, min=100, max=10000)),
        "celery", "linear", f"{_BUILD}:text_logistic_regression"),
    ClassifierSpec(
        "svm", "text", "Support vector machine",
        "Linear support vector machine on word frequencies (TF-IDF): a wide margin between the classes.",
        (Param("C", "Inverse regularisation strength", 1.0, kind="float", min=1e-3, max=1e3, help=_C_HELP),),
        "celery", "linear", f"{_BUILD}:text_svm"),
    ClassifierSpec(
        "naive_bayes", "text", "Naive Bayes",
        "Multinomial naive Bayes on word frequencies (TF-IDF): how typical each word is of each class.",
        (Param("alpha", "Smoothing", 0.1, kind="float", min=1e-4, max=10.0, help="Larger values trust rare words less."),),
        "celery", "other", f"{_BUILD}:text_naive_bayes"),
)

# ---------------------------------------------------------------- the registries built from the entries

# Every explainer key once, with its first entry (its label and description speak for the key).
EXPLAINERS: dict[str, ExplainerEntry] = {}
# The entry behind each key for each kind of data.
EXPLAINER_VARIANTS: dict[str, dict[str, ExplainerEntry]] = {modality: {} for modality in MODALITIES}
CLASSIFIERS: dict[str, ClassifierSpec] = {}
CLASSIFIER_VARIANTS: dict[str, dict[str, ClassifierSpec]] = {modality: {} for modality in MODALITIES}


def explainer_register(entry: ExplainerEntry) -> ExplainerEntry:
    """Offer ``entry`` (what a line in ``EXPLAINER_ENTRIES`` does; tests register plug-ins of their own)."""
    EXPLAINERS.setdefault(entry.key, entry)
    EXPLAINER_VARIANTS.setdefault(entry.modality, {})[entry.key] = entry
    return entry


def explainer_unregister(entry: ExplainerEntry) -> None:
    """Undo ``explainer_register``."""
    variants = EXPLAINER_VARIANTS.get(entry.modality, {})
    if variants.get(entry.key) is entry:
        del variants[entry.key]
    if EXPLAINERS.get(entry.key) is entry:
        del EXPLAINERS[entry.key]
        others = [v[entry.key] for v in EXPLAINER_VARIANTS.values() if entry.key in v]
        if others:
            EXPLAINERS[entry.key] = others[0]


def classifier_register(spec: ClassifierSpec) -> ClassifierSpec:
    CLASSIFIERS.setdefault(spec.key, spec)
    CLASSIFIER_VARIANTS.setdefault(spec.modality, {})[spec.key] = spec
    return spec


for _entry in EXPLAINER_ENTRIES:
    explainer_register(_entry)
for _spec in CLASSIFIER_ENTRIES:
    classifier_register(_spec)


def explainer_modalities(key: str) -> list[str]:
    return [modality for modality, variants in EXPLAINER_VARIANTS.items() if key in variants]


def explainer_variant(key: str, modality: str) -> ExplainerEntry | None:
    """The entry of ``key`` on this kind of data, ``None`` when there is none (a row saved by a removed plug-in)."""
    return EXPLAINER_VARIANTS.get(modality, {}).get(key)


def explainer_entry(key: str, modality: str) -> ExplainerEntry:
    """The entry of ``key`` on this kind of data; an ``UnknownExplainerError`` names the keys that fit."""
    variants = EXPLAINER_VARIANTS.get(modality, {})
    if key not in EXPLAINERS:
        raise UnknownExplainerError(f"Unknown explainer “{key}”; choose one of {', '.join(variants)}.")
    if key not in variants:
        raise UnknownExplainerError(f"{EXPLAINERS[key].label} cannot explain {modality} data; choose one of "
                                    f"{', '.join(variants)}.")
    return variants[key]


def explainer_entry_get(key: str) -> ExplainerEntry:
    try:
        return EXPLAINERS[key]
    except KeyError:
        raise UnknownExplainerError(f"Unknown explainer {key!r}; choose one of {', '.join(EXPLAINERS)}.") from None


def explainer_entries_of(implementation: str) -> list[ExplainerEntry]:
    """The entries that name this ``"module:Class"`` (one per kind of data the class explains)."""
    return [entry for variants in EXPLAINER_VARIANTS.values() for entry in variants.values()
            if entry.implementation == implementation]


def explainer_label(key: str) -> str:
    """The key's label, or the key itself for a row saved by an explainer since removed."""
    return EXPLAINERS[key].label if key in EXPLAINERS else key


def classifier_modalities(key: str) -> list[str]:
    return [modality for modality, variants in CLASSIFIER_VARIANTS.items() if key in variants]


def classifier_for(key: str, modality: str) -> ClassifierSpec:
    """The spec (label, params, builder) of ``key`` on this kind of data; ``KeyError`` says which keys fit."""
    variants = CLASSIFIER_VARIANTS.get(modality, {})
    if key in variants:
        return variants[key]
    keys = ", ".join(variants)
    if key not in CLASSIFIERS:
        raise KeyError(f"Unknown classifier “{key}”; choose from {keys}.")
    raise KeyError(f"{CLASSIFIERS[key].label} cannot learn from {modality} data; choose from {keys}.")


def classifier_spec_get(key: str) -> ClassifierSpec:
    try:
        return CLASSIFIERS[key]
    except KeyError:
        raise KeyError(f"Unknown classifier {key!r}; choose one of {', '.join(CLASSIFIERS)}.") from None


def classifier_label(key: str) -> str:
    """The key's label, or the key itself for a run of a classifier since removed."""
    return CLASSIFIERS[key].label if key in CLASSIFIERS else key
