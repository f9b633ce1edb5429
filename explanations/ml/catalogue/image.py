"""The explainers and classifiers of images (a CNN's pixels, or superpixels for the model-agnostic methods)."""

from __future__ import annotations

from explanations.ml.catalogue.registry import EXPLAINERS_PACKAGE as _PACKAGE
from explanations.ml.catalogue.registry import ClassifierSpec, ExplainerEntry, rule_search_samples
from explanations.ml.params import Param

SEGMENTATIONS = ("quickshift", "slic", "felzenszwalb")
# The image explainers that only call the model (no gradients): all an uploaded ONNX graph allows. SHAP then
# runs as Kernel SHAP over superpixels.
IMAGE_EXPLAINERS_CALLING_ONLY = ("lime", "anchor", "shap", "occlusion", "rise")
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

IMAGE_EXPLAINERS: tuple[ExplainerEntry, ...] = (
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
)

IMAGE_CLASSIFIERS: tuple[ClassifierSpec, ...] = (
    ClassifierSpec(
        "cnn", "image", "Convolutional network",
        "Convolutional network: a small PyTorch CNN that learns shapes in images (uses a GPU when there is one).",
        (Param("epochs", "Training epochs", 5, min=1, max=100),
         Param("learning_rate", "Learning rate", 0.003, kind="float", min=1e-5, max=1.0),
         Param("channels", "Filters in the first layer", 16, min=4, max=128, help="The second layer has twice as many.")),
        "gpu", "other", "explanations.ml.torch_cnn:cnn"),
)
