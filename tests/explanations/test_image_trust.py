"""Known-answer tests of the image trust metrics and ROAR on tiny models whose right answer is known.

The model: a linear layer on 4x4 grey images, two classes. Its logit difference is ``(w1 - w0) · x``, so the true
attribution of class 1 is ``(w1 - w0) * x`` (each pixel's exact share of the score).
"""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

from explanations.ml import image_trust, roar


@pytest.fixture
def linear():
    torch.manual_seed(0)
    module = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    with torch.no_grad():
        module[1].weight.copy_(torch.tensor(np.stack([np.zeros(16), 0.3 * np.linspace(-0.5, 1.0, 16)]), dtype=torch.float32))
        module[1].bias.zero_()
    return module.eval()


@pytest.fixture
def image():
    return np.random.default_rng(1).uniform(0.2, 1.0, (4, 4, 1))


def predict_of(module):
    return image_trust.module_predict_proba(module, torch.device("cpu"), np.array([0, 1]), 2)


def true_map(module, image):
    w = module[1].weight.detach().numpy()
    return ((w[1] - w[0]).reshape(4, 4) * image[..., 0])


def gradient_x_input(module, image):
    x = torch.tensor(image.transpose(2, 0, 1)[None], dtype=torch.float32, requires_grad=True)
    logits = module(x)
    (logits[0, 1] - logits[0, 0]).backward()
    return (x.grad[0] * x[0]).detach().numpy().sum(axis=0)


def test_class_map_sums_channels_and_picks_the_class():
    attribution = np.arange(2 * 2 * 2 * 3, dtype=float).reshape(2, 2, 2, 3)
    data = {"label": 7, "attribution_classes": [3, 7]}
    assert np.array_equal(image_trust.class_map(attribution, data), attribution[1].sum(axis=-1))
    assert np.array_equal(image_trust.class_map(attribution, {"label": 5, "attribution_classes": [5]}),
                          attribution[0].sum(axis=-1))


def test_deletion_of_the_true_map_drops_faster_than_a_random_map(linear, image):
    predict = predict_of(linear)
    truth = true_map(linear, image)
    deletion, insertion = image_trust.causal_curves(predict, image, truth, 1, steps=16)
    assert deletion[0] == pytest.approx(predict(image[None])[0, 1])
    assert deletion[-1] == pytest.approx(0.5)  # a black image: both logits 0
    random_aucs = []
    for seed in range(20):
        noise = np.random.default_rng(seed).normal(size=(4, 4))
        d, i = image_trust.causal_curves(predict, image, noise, 1, steps=16)
        random_aucs.append((image_trust.curve_auc(d), image_trust.curve_auc(i)))
    assert image_trust.curve_auc(deletion) < min(a for a, _ in random_aucs)
    assert image_trust.curve_auc(insertion) > np.mean([b for _, b in random_aucs])
    # the reversed map (most negative first) is the worst order of all
    worst, _ = image_trust.causal_curves(predict, image, -truth, 1, steps=16)
    assert image_trust.curve_auc(worst) > max(a for a, _ in random_aucs)


def test_faithfulness_is_high_for_the_true_map_and_zero_for_a_constant_one(linear, image):
    predict = predict_of(linear)
    truth = true_map(linear, image)
    assert image_trust.faithfulness_correlation(predict, image, truth, 1, share=0.25) > 0.9
    assert image_trust.faithfulness_correlation(predict, image, np.ones((4, 4)), 1, share=0.25) == 0.0
    noise = [image_trust.faithfulness_correlation(predict, image, np.random.default_rng(s).normal(size=(4, 4)), 1,
                                                  share=0.25) for s in range(10)]
    assert abs(np.mean(noise)) < 0.3


def test_gradient_x_input_is_the_true_map_on_a_linear_model(linear, image):
    assert np.allclose(gradient_x_input(linear, image), true_map(linear, image), atol=1e-5)


def test_sanity_passes_a_model_dependent_map_and_fails_an_edge_detector(linear, image):
    networks = image_trust.cascading_randomisation(linear, seed=0)
    assert [n.layer for n in networks] == ["Linear 1 (16×2)"]
    assert not torch.equal(networks[0].module[1].weight, linear[1].weight)  # the original is untouched
    gradient = image_trust.sanity_check([gradient_x_input(linear, image)],
                                        lambda net: [gradient_x_input(net.module, image)], networks)[0]
    assert gradient["similarity"] < 0.5 and gradient["fails"] is False
    edges = image_trust.sanity_check([image[..., 0]], lambda net: [image[..., 0]], networks)[0]
    assert edges["similarity"] == pytest.approx(1.0) and edges["fails"] is True
    assert edges["layers"] == [{"layer": "Linear 1 (16×2)", "similarity": 1.0}]


def test_cascading_randomisation_goes_from_the_top_down():
    module = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(32, 8), nn.Linear(8, 2))
    networks = image_trust.cascading_randomisation(module, seed=3)
    assert [n.layer.split(" (")[0] for n in networks] == ["Linear 4", "Linear 3", "Conv2d 0"]
    second = networks[1].module
    assert torch.equal(second[0].weight, module[0].weight)  # the bottom layer is still trained
    assert not torch.equal(second[3].weight, module[3].weight) and not torch.equal(second[4].weight, module[4].weight)
    assert torch.equal(second[4].weight, networks[0].module[4].weight)  # cumulative: the top stays as randomised


def test_stability_and_agreement_are_rank_correlations():
    a = np.arange(16.0).reshape(4, 4)
    assert image_trust.mean_pairwise_similarity([a, a * 2, a + 0]) == pytest.approx(1.0)
    assert image_trust.agreement(a, [-a]) == pytest.approx(1.0)  # |map|: a sign convention is not disagreement
    assert image_trust.agreement(a, [a[::-1, ::-1]]) == pytest.approx(-1.0)


def test_one_explanation_carries_every_measurable_field(linear, image):
    trust = image_trust.image_explanation_trust(predict_proba=predict_of(linear), image=image,
                                                value_map=true_map(linear, image), label=1)
    assert set(trust) == {"deletion_auc", "insertion_auc", "faithfulness", "stability", "curves"}
    assert trust["stability"] is None and len(trust["curves"]["deletion"]) == image_trust.CURVE_STEPS + 1


def test_roar_drops_accuracy_for_the_informative_pixels_not_for_random_ones():
    rng = np.random.default_rng(0)
    n, key = 300, [(1, 1), (1, 6), (6, 1), (6, 6), (3, 4)]
    y = rng.integers(0, 2, n)
    images = rng.uniform(0, 0.2, (n, 8, 8, 1)).astype(np.float32)
    for r, c in key:
        images[:, r, c, 0] = y * 0.8 + rng.normal(0, 0.05, n)
    truth = np.zeros((n, 8, 8))
    for r, c in key:
        truth[:, r, c] = 1.0

    def fit_predict(train, y_train, test):
        model = LogisticRegression(max_iter=500).fit(train.reshape(len(train), -1), y_train)
        return model.predict(test.reshape(len(test), -1))

    table = roar.roar_table(train_images=images[:200], y_train=y[:200], test_images=images[200:], y_test=y[200:],
                            train_maps={"truth": truth[:200]}, test_maps={"truth": truth[200:]},
                            fit_predict=fit_predict, shares=(0.1, 0.5))
    assert table["shares"] == [10, 50] and table["baseline_accuracy"] > 0.95
    rows = {row["method"]: row for row in table["methods"]}
    assert rows["truth"]["accuracy"][0] < 0.7  # the five key pixels are the top 8% of the map: all gone
    assert rows["random"]["accuracy"][0] > 0.9  # a random 10% rarely takes all five
    assert rows["truth"]["drop"][0] == pytest.approx(table["baseline_accuracy"] - rows["truth"]["accuracy"][0], abs=1e-4)


def test_pixels_removed_takes_the_top_share_by_the_map():
    images = np.ones((1, 2, 2, 1), dtype=np.float32)
    out = roar.pixels_removed(images, np.array([[[4, 1], [3, 2]]]), 0.5, np.array([0.0]))
    assert out[0, ..., 0].tolist() == [[0.0, 1.0], [0.0, 1.0]]
    assert images.min() == 1.0  # a copy


def test_shared_zero_background_does_not_make_maps_alike():
    rng = np.random.default_rng(0)
    digit = np.zeros((28, 28))
    digit[8:20, 12:16] = 1.0  # a stroke on a black background
    a, b = rng.normal(size=(28, 28)) * digit, rng.normal(size=(28, 28)) * digit  # two unrelated input-times-gradient maps
    assert abs(image_trust.maps_similarity(a, b)) < 0.3
    assert image_trust.maps_similarity(a, a * 3) == pytest.approx(1.0)
