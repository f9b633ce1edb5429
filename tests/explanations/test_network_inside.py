"""Inside the network (explanations/ml/network_inside.py), on tiny networks whose answers are known: a channel
built to detect vertical bars is excited by bars, NMF recovers an activation made of known parts, and the
targeted fast gradient sign stays within ε, stops when it arrives and says when it cannot."""

import numpy as np
import pytest
import torch
from torch import nn

from explanations.ml.network_inside import (
    NetworkError,
    channel_directions,
    conv_layers,
    feature_visualise,
    layer_activation,
    neuron_groups,
    targeted_fgsm,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIZE = 16




def bar_detectors() -> nn.Sequential:
    """conv1: channel 0 responds to vertical bars, channel 1 to horizontal ones (5×5, zero-sum rows/columns, a
    threshold so noise barely registers); conv2 (1×1) passes each rectified channel on: its channel k is the
    amount of bar k in the image, a non-linear function of the pixels with a known best answer."""
    profile = torch.tensor([-1.0, 0.5, 1.0, 0.5, -1.0])
    vertical = profile.expand(5, 5).clone()
    first = nn.Conv2d(1, 2, 5, padding=2)
    second = nn.Conv2d(2, 2, 1)
    with torch.no_grad():
        first.weight.copy_(torch.stack([vertical, vertical.T])[:, None])
        first.bias.fill_(-1.5)
        second.weight.copy_(torch.eye(2)[:, :, None, None])
        second.bias.zero_()
    return nn.Sequential(first, nn.ReLU(), second, nn.ReLU(), nn.Flatten(), nn.Linear(2 * SIZE * SIZE, 2)).eval()


def direction_energy(image: np.ndarray) -> tuple[float, float]:
    """How much the image varies along x (vertical bars) and along y (horizontal bars)."""
    grey = image[..., 0]
    return float(np.square(np.diff(grey, axis=1)).mean()), float(np.square(np.diff(grey, axis=0)).mean())


def test_layers_are_the_convolutions_in_order():
    layers = conv_layers(bar_detectors())
    assert [(layer.name, layer.module_name, layer.channels) for layer in layers] == [("conv1", "0", 2), ("conv2", "2", 2)]


def test_feature_visualisation_grows_the_pattern_a_channel_detects():
    net = bar_detectors()
    shown = feature_visualise(net, "conv2", channel_directions([0, 1], 2), shape=(SIZE, SIZE, 1), steps=128, seed=3)
    assert shown.images.shape == (2, SIZE, SIZE, 1) and 0 <= shown.images.min() and shown.images.max() <= 1
    # From noise the bars are barely there; after the ascent each channel responds many times more.
    assert np.all(shown.end > 5 * np.maximum(shown.start, 0.05)), (shown.start, shown.end)
    along_x, along_y = direction_energy(shown.images[0])
    assert along_x > 3 * along_y  # channel 0's picture is vertical bars
    along_x, along_y = direction_energy(shown.images[1])
    assert along_y > 3 * along_x  # channel 1's horizontal ones
    # The same seed gives the same picture; a layer or channel count the network lacks is said plainly.
    again = feature_visualise(net, "conv2", channel_directions([0], 2), shape=(SIZE, SIZE, 1), steps=128, seed=3)
    np.testing.assert_allclose(again.images[0], shown.images[0], atol=1e-5)
    with pytest.raises(NetworkError, match="no layer “conv9”; pick one of conv1, conv2"):
        feature_visualise(net, "conv9", channel_directions([0], 2), shape=(SIZE, SIZE, 1))
    with pytest.raises(NetworkError, match="2 channels"):
        feature_visualise(net, "conv2", channel_directions([0], 3), shape=(SIZE, SIZE, 1))


def test_neuron_groups_recover_an_activation_made_of_known_parts():
    rng = np.random.default_rng(0)
    masks = np.zeros((3, 8, 8))
    masks[0, :, :3], masks[1, :, 3:5], masks[2, :, 5:] = 1.0, 1.0, 1.0
    masks *= rng.uniform(0.5, 1.5, size=masks.shape)
    mixes = np.zeros((3, 12))
    mixes[0, 0:4], mixes[1, 4:8], mixes[2, 8:12] = 1.0, 1.0, 1.0
    mixes *= rng.uniform(0.5, 1.5, size=mixes.shape)
    activation = np.einsum("gc,ghw->chw", mixes, masks)
    groups = neuron_groups(activation, 3, seed=0)
    assert groups.spatial.shape == (3, 8, 8) and groups.channels.shape == (3, 12)
    np.testing.assert_allclose(groups.channels.sum(axis=1), 1.0, atol=1e-9)
    assert abs(groups.shares.sum() - 1) < 1e-9 and np.all(np.diff(groups.shares) <= 1e-12)  # largest first
    for true_mask, true_mix in zip(masks, mixes):
        spatial = max(np.corrcoef(true_mask.ravel(), found.ravel())[0, 1] for found in groups.spatial)
        mix = max(np.corrcoef(true_mix, found)[0, 1] for found in groups.channels)
        assert spatial > 0.95 and mix > 0.95, (spatial, mix)
    with pytest.raises(NetworkError, match="from 2 to 10"):
        neuron_groups(activation, 11)
    with pytest.raises(NetworkError, match="does not respond anywhere"):
        neuron_groups(np.zeros((4, 3, 3)), 2)


def test_layer_activation_is_rectified_and_per_channel():
    image = np.zeros((SIZE, SIZE, 1), dtype=np.float32)
    image[:, 6:9] = 1.0  # one vertical bar
    activation = layer_activation(bar_detectors(), "conv1", image)
    assert activation.shape == (2, SIZE, SIZE) and activation.min() >= 0
    assert activation[0].sum() > 5 * activation[1].sum()


def linear_net() -> nn.Sequential:
    """Logits linear in the pixels of a 4×4 image: class k looks at quadrant k (and class 3 at none)."""
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 4))
    weight = torch.zeros(4, 16)
    for k in range(3):
        quadrant = np.zeros((4, 4))
        quadrant[(k // 2) * 2:(k // 2) * 2 + 2, (k % 2) * 2:(k % 2) * 2 + 2] = 1.0
        weight[k] = torch.from_numpy(quadrant.ravel()).float()
    with torch.no_grad():
        net[1].weight.copy_(weight)
        net[1].bias.copy_(torch.tensor([0.0, 0.0, 0.0, 1.0]))
    return net.eval()


def test_targeted_fgsm_reaches_the_target_within_epsilon_and_stops():
    net = linear_net()
    image = np.zeros((4, 4, 1), dtype=np.float32)
    image[:2, :2] = 0.6  # class 0: 2.4 against class 1's 0
    image[:2, 2:] = 0.1
    found = targeted_fgsm(net, image, 1, epsilon=0.3, alpha=0.01, iterations=100)
    assert found.reached and int(np.argmax(found.logits_after)) == 1 and int(np.argmax(found.logits_before)) == 0
    assert found.linf <= 0.3 + 1e-6 and np.abs(found.image - image).max() <= 0.3 + 1e-6
    assert 0 <= found.image.min() and found.image.max() <= 1
    assert found.steps < 100  # it stopped when it arrived...
    shorter = targeted_fgsm(net, image, 1, epsilon=0.3, alpha=0.01, iterations=found.steps - 1)
    assert not shorter.reached and shorter.steps == found.steps - 1  # ...and not a step before
    # Too small a budget: it says so, still within ε.
    small = targeted_fgsm(net, image, 1, epsilon=0.01, alpha=0.01, iterations=50)
    assert not small.reached and small.linf <= 0.01 + 1e-6 and int(np.argmax(small.logits_after)) == 0
    # Already the target: no step at all.
    same = targeted_fgsm(net, image, 0, epsilon=0.05, alpha=0.05, iterations=10)
    assert same.reached and same.steps == 0 and same.linf == 0.0
    for bad in ({"epsilon": 0.0}, {"epsilon": 1.5}, {"alpha": -0.1}, {"iterations": 0}, {"iterations": 101}):
        with pytest.raises(NetworkError):
            targeted_fgsm(net, image, 1, **{"epsilon": 0.05, "alpha": 0.05, "iterations": 10, **bad})


def test_the_pictures_render_with_alt_text_that_says_what_they_show():
    from explanations.ml.plots import figure_render
    from explanations.ml.plots.network import (
        adversarial_alt,
        adversarial_plot,
        feature_grid_alt,
        feature_grid_plot,
        neuron_groups_alt,
        neuron_groups_plot,
        place_of,
    )

    rng = np.random.default_rng(0)
    pictures = rng.uniform(size=(3, 8, 8, 1))
    png, svg = figure_render(feature_grid_plot(list(pictures), ["channel 0", "channel 4", "channel_$x$"],
                                               title="What block 1 looks for", subtitle="grown from noise"))
    assert png.startswith(b"\x89PNG") and b"channel_$x$" in svg  # names drawn as typed, never as mathtext
    alt = feature_grid_alt(layer_label="convolution block 1", channels=[0, 4], start=[0.1, 0.2], end=[1.5, 2.0])
    assert "channels 0, 4 of convolution block 1" in alt and "0.1 → 1.5" in alt
    groups = np.zeros((2, 8, 8))
    groups[0, :3, :3], groups[1, 5:, 5:] = 1.0, 0.5
    png, _ = figure_render(neuron_groups_plot(pictures[0], groups, list(pictures[:2]), [0.7, 0.3], title="Groups"))
    assert png.startswith(b"\x89PNG")
    assert [place_of(g) for g in groups] == ["mostly top left", "mostly bottom right"]
    alt = neuron_groups_alt(layer_label="block 2", shares=[0.7, 0.3], places=["mostly top left", "in the centre"],
                            subject="Row 4")
    assert alt.startswith("Row 4, with 2 neuron groups of block 2") and "group 1 (70%) mostly top left" in alt
    png, _ = figure_render(adversarial_plot(pictures[0], np.clip(pictures[0] + 0.05, 0, 1), [groups[0], groups[1]],
                                            ["row 4: 7 (99%)", "adversarial: 3 (60%)"], epsilon=0.05,
                                            summary="Target 3: reached after 4 steps", title="An adversarial example"))
    assert png.startswith(b"\x89PNG")
    assert "still predicts 7, not the target 3" in adversarial_alt(before="7", after="7", target="3", reached=False,
                                                                   steps=100, linf=0.05, epsilon=0.05)


@pytest.mark.gpu
def test_on_cuda_the_same_answers_as_on_the_cpu():
    """The network lives on the worker's device; every tensor follows it (no CPU-only code path)."""
    net = bar_detectors()
    cpu = feature_visualise(net, "conv2", channel_directions([0], 2), shape=(SIZE, SIZE, 1), steps=64, seed=1)
    gpu = feature_visualise(bar_detectors().cuda(), "conv2", channel_directions([0], 2), shape=(SIZE, SIZE, 1), steps=64,
                            seed=1)
    assert gpu.end[0] > 5 * max(gpu.start[0], 0.05) and abs(gpu.end[0] - cpu.end[0]) < 0.1 * cpu.end[0]
    image = np.zeros((4, 4, 1), dtype=np.float32)
    image[:2, :2] = 0.6
    found = targeted_fgsm(linear_net().cuda(), image, 1, epsilon=0.3, alpha=0.01, iterations=100)
    assert found.reached and found.linf <= 0.3 + 1e-6
    groups_image = np.zeros((SIZE, SIZE, 1), dtype=np.float32)
    groups_image[:, 6:9] = 1.0
    assert layer_activation(bar_detectors().cuda(), "conv1", groups_image).shape == (2, SIZE, SIZE)
