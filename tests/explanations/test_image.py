"""Images: MNIST pixel columns and ZIP uploads, the CNN (CPU here, CUDA in the ``gpu`` test), the five image
explainers, and a job end to end with attribution maps in the ZIP."""

import io
import json
import zipfile

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from datasets.services import dataset_create, dataset_schema_default, dataset_schema_set
from explainer_site.exceptions import ApplicationError
from explanations.exports import job_zip_fresh
from explanations.ml.explainers.image import IMAGE_EXPLAINERS
from explanations.ml.plots import figure_render
from explanations.ml.plots.image import IMAGE_PLOTTERS, image_alt_text
from explanations.models import Explanation, Plot
from explanations.services.job_create import job_create
from tests.unit_fixtures import *  # noqa: F403
from tests.unit_fixtures import SHARED

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MNIST_ROWS = 600
FAST = {"lime": {"num_samples": 150}, "anchor": {"threshold": 0.9, "batch_size": 10, "max_anchor_size": 2},
        "shap": {"background_size": 10}, "gradient_shap": {"background_size": 10, "nsamples": 20},
        "integrated_gradients": {"steps": 16}}
CNN_FAST = {"epochs": 2}




def mnist_frame(rows: int = MNIST_ROWS) -> pd.DataFrame:
    return pd.read_csv(SHARED / "mnist_5k.csv", nrows=rows)


def mnist_upload(rows: int = MNIST_ROWS) -> SimpleUploadedFile:
    return SimpleUploadedFile("mnist.csv", mnist_frame(rows).to_csv(index=False).encode(), content_type="text/csv")


@pytest.fixture
def mnist(user):
    dataset = dataset_create(owner=user, file=mnist_upload(), name="MNIST")
    pixels = [c for c in dataset.column_names if c != "label"]
    return dataset_schema_set(dataset=dataset, label="label", features=pixels, image_shape=[28, 28])


@pytest.fixture(scope="module")
def mnist_data():
    from explanations.job_data import image_data_from_frame

    frame = mnist_frame()
    schema = {"label": "label", "features": [c for c in frame.columns if c != "label"], "categorical": [],
              "class_names": {str(d): str(d) for d in range(10)}, "row_name": "", "image_shape": [28, 28]}
    return image_data_from_frame(frame, schema=schema, test_size=0.25, seed=0)


@pytest.fixture(scope="module")
def cnn(mnist_data):
    from explanations.ml.image_models import cnn_fit

    torch.set_num_threads(1)
    return cnn_fit(CNN_FAST, mnist_data.X[mnist_data.train_idx], mnist_data.y[mnist_data.train_idx], seed=0)


def zip_upload(files: dict[str, bytes], name: str = "digits.zip") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="application/zip")


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


# ---------------------------------------------------------------- datasets


@pytest.mark.django_db
def test_pixel_csv_gets_a_square_shape_proposed_and_checked(user):
    dataset = dataset_create(owner=user, file=mnist_upload(60), name="MNIST")
    default = dataset_schema_default(dataset=dataset)
    assert default["label"] == "label" and default["image_shape"] == [28, 28] and len(default["features"]) == 784
    pixels = default["features"]
    with pytest.raises(ApplicationError, match="784") as error:
        dataset_schema_set(dataset=dataset, label="label", features=pixels, image_shape=[28, 27])
    assert error.value.extra["field"] == "image_shape"
    with pytest.raises(ApplicationError, match="height × width") as error:
        dataset_schema_set(dataset=dataset, label="label", features=pixels, image_shape=[28, 28, 2])
    schema = dataset_schema_set(dataset=dataset, label="label", features=pixels, image_shape=[28, 28, 1]).schema
    assert schema["image_shape"] == [28, 28, 1] and "text" not in schema


@pytest.mark.django_db
def test_zip_of_class_folders_becomes_an_image_dataset(user):
    frame = mnist_frame(12)
    files = {f"digits/{label}/{i}.png": png(row.reshape(28, 28))
             for i, (label, row) in enumerate(zip(frame["label"], frame.iloc[:, 1:].to_numpy()))}
    files["digits/readme.txt"] = b"not an image"
    files["__MACOSX/digits/._0.png"] = b"resource fork"
    dataset = dataset_create(owner=user, file=zip_upload(files), name="")
    assert dataset.n_rows == 12 and dataset.schema["image_shape"] == [28, 28]
    assert dataset.schema["label"] == "label" and dataset.schema["row_name"] == "file"
    assert set(dataset.schema["class_names"]) == {str(v) for v in frame["label"]}
    assert any("Skipped 1 file" in note for note in dataset.cleaning_notes)
    from datasets.selectors import dataset_frame_load

    stored = dataset_frame_load(dataset=dataset)
    first = stored.iloc[0]
    original = frame.iloc[int(first["file"].split("/")[-1].split(".")[0]), 1:].to_numpy(dtype=float)
    np.testing.assert_array_equal(first[[f"pixel{j}" for j in range(784)]].to_numpy(dtype=float), original)


@pytest.mark.django_db
@pytest.mark.parametrize(("files", "message"), [
    ({"../evil/1.png": b"x", "a/2.png": b"x"}, "outside the archive"),
    ({"/abs/1.png": b"x"}, "outside the archive"),
    ({"one.png": b"x"}, "not in a folder"),
    ({"a/1.png": b"not a png", "b/2.png": b"x"}, "not an image"),
    ({"a/1.png": "big", "b/2.png": "big"}, "at most 2048"),
    ({"only/1.png": "small"}, "at least two class folders"),
])
def test_zip_uploads_are_bounded(user, files, message):
    images = {"big": png(np.zeros((2049, 8))), "small": png(np.zeros((28, 28)))}
    files = {path: images.get(data, data) if isinstance(data, str) else data for path, data in files.items()}
    with pytest.raises(ApplicationError, match=message):
        dataset_create(owner=user, file=zip_upload(files))


@pytest.mark.django_db
def test_zip_with_too_many_images_is_refused(user, monkeypatch):
    monkeypatch.setattr("datasets.images.MAX_IMAGES", 3)
    small = png(np.zeros((8, 8)))
    with pytest.raises(ApplicationError, match="at most 3"):
        dataset_create(owner=user, file=zip_upload({f"{c}/{i}.png": small for c in "ab" for i in range(2)}))


# ---------------------------------------------------------------- the CNN and the explainers (no database)


@pytest.mark.django_db
def test_cnn_learns_digits_repeatably_and_survives_joblib(cnn, mnist_data):
    from explanations.ml.image_models import cnn_fit, image_predictor_build

    test = mnist_data.X[mnist_data.test_idx]
    assert (cnn.predict(test) == mnist_data.y[mnist_data.test_idx]).mean() > 0.5  # 2 epochs on 450 digits
    again = cnn_fit(CNN_FAST, mnist_data.X[mnist_data.train_idx], mnist_data.y[mnist_data.train_idx], seed=0)
    np.testing.assert_array_equal(again.predict_proba(test[:20]), cnn.predict_proba(test[:20]))
    buffer = io.BytesIO()
    joblib.dump(cnn, buffer)
    loaded = joblib.load(io.BytesIO(buffer.getvalue()))
    np.testing.assert_allclose(loaded.predict_proba(test[:20]), cnn.predict_proba(test[:20]), atol=1e-6)
    proba = image_predictor_build("cnn", cnn, mnist_data.space).predict_proba(test[:5])
    assert proba.shape == (5, 10) and np.allclose(proba.sum(axis=1), 1)


@pytest.mark.django_db
@pytest.mark.parametrize("key", list(IMAGE_EXPLAINERS))
def test_image_explainer_contract(key, cnn, mnist_data):
    from explanations.ml.image_models import image_predictor_build

    predictor = image_predictor_build("cnn", cnn, mnist_data.space)
    rows = [int(mnist_data.test_idx[0])]
    explainer = IMAGE_EXPLAINERS[key](**FAST[key])
    assert explainer.fit(mnist_data.X[mnist_data.train_idx], predictor, mnist_data.space, seed=3) is explainer
    [explanation] = explainer.explain(mnist_data.X[rows], rows)
    data = explanation.data
    assert explanation.method == key and explanation.row == rows[0] and explanation.meta["seed"] == 3
    assert explanation.predicted == int(np.argmax(explanation.probabilities)) == data["label"]
    assert data["runner_up"] != data["label"] and explanation.probabilities[data["runner_up"]] == sorted(explanation.probabilities)[-2]
    assert list(explanation.attribution.shape) == data["attribution_shape"]
    assert data["attribution_shape"][1:3] == [28, 28] and data["label"] in data["attribution_classes"]
    json.dumps(data)  # the map itself is not in ``data``
    for region in data["top_regions"]:
        top, left, bottom, right = region["box"]
        assert 0 <= top < bottom <= 28 and 0 <= left < right <= 28
    if key in ("shap", "gradient_shap", "integrated_gradients"):
        assert data["attribution_shape"] == [10, 28, 28, 1] and data["top_regions"]
    if key == "integrated_gradients":  # completeness: attributions add up to logit(x) - logit(black image)
        assert data["completeness_gap"] < 0.05
    if key == "anchor":
        assert 0 <= data["precision"] <= 1 and explanation.attribution.max() == 1.0
        assert len(data["rule"]) == len(data["top_regions"])  # one phrase per kept region, saying where it is
        assert all(condition.startswith("the ") and " (rows " in condition and ", columns " in condition for condition in data["rule"])
    figure = IMAGE_PLOTTERS[key](explanation, mnist_data.space, title="Why row 1 is predicted 7", subtitle="test")
    png_bytes, svg = figure_render(figure)
    assert png_bytes.startswith(b"\x89PNG") and b"Why row 1 is predicted 7" in svg
    assert mnist_data.space.class_names[data["label"]] in image_alt_text(explanation, mnist_data.space)


def test_region_phrases_say_where_a_region_lies() -> None:
    from explanations.ml.explainers.image import region_phrase

    assert region_phrase([0, 3, 10, 13], (28, 28)) == "the top-left area (rows 0–9, columns 3–12)"
    assert region_phrase([10, 10, 18, 18], (28, 28)) == "the central area (rows 10–17, columns 10–17)"
    assert region_phrase([20, 12, 28, 16], (28, 28)) == "the area at the bottom (rows 20–27, columns 12–15)"
    assert region_phrase([9, 22, 19, 28], (28, 28)) == "the area on the right (rows 9–18, columns 22–27)"


# ---------------------------------------------------------------- jobs


def run_mnist_job(*, user, dataset, run_on_commit, explainers, params, rows):
    with run_on_commit():
        job = job_create(owner=user, dataset=dataset, classifiers=["cnn"], explainers=explainers, rows=rows,
                         params={**params, "classifiers": {"cnn": CNN_FAST}})
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    return job


@pytest.mark.django_db
def test_mnist_job_trains_the_cnn_with_progress_and_packs_maps(mnist, user, run_on_commit, monkeypatch):
    import explanations.job_steps as job_steps

    stages = []
    stage_set = job_steps.job_stage_set
    monkeypatch.setattr(job_steps, "job_stage_set", lambda job_id, stage, **kw: stages.append(stage) or stage_set(job_id, stage, **kw))
    with pytest.raises(ApplicationError, match="cannot learn from image"):
        job_create(owner=user, dataset=mnist, classifiers=["random_forest"], explainers=["lime"])
    job = run_mnist_job(user=user, dataset=mnist, run_on_commit=run_on_commit, explainers=list(IMAGE_EXPLAINERS),
                        params=FAST, rows={"ids": [1, 4]})
    assert "Training CNN: epoch 1 of 2" in stages and "Training CNN: epoch 2 of 2" in stages
    # Two images make two batches an explainer (EXPLAINER_BATCHES_MIN): each says which image of the two it explains.
    assert {s.split(" with ")[0] for s in stages if "with Integrated Gradients" in s} == {
        "Explaining image 1 of 2", "Explaining image 2 of 2"}
    run = job.runs.get()
    # The CNN trains where the worker is: CUDA on a GPU machine, the CPU elsewhere (CI).
    assert run.metrics["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert run.units_done == run.units_total == 2 + 1 + 2 * 5
    assert Explanation.objects.filter(job=job).count() == 10
    assert Plot.objects.filter(job=job, kind="image_comparison").exists()
    ig = Explanation.objects.get(job=job, row=4, explainer="integrated_gradients")
    assert ig.data["attribution_file"] == "attributions/cnn_integrated_gradients_row4.npy"
    with default_storage.open(job_zip_fresh(job=job), "rb") as handle:  # packed at the first download
        archive = zipfile.ZipFile(io.BytesIO(handle.read()))
    maps = [n for n in archive.namelist() if n.endswith(".npy")]
    assert len(maps) == 10
    saved = np.load(io.BytesIO(archive.read(ig.data["attribution_file"])))
    assert list(saved.shape) == ig.data["attribution_shape"] == [10, 28, 28, 1]
    stored = ig.meta["attribution_file"]

    from explanations.services.job_delete import job_delete

    assert default_storage.exists(stored)
    job_delete(job=job)
    assert job.pk is None or not Explanation.objects.filter(job_id=ig.job_id).exists()


@pytest.mark.gpu
@pytest.mark.django_db
def test_mnist_job_runs_on_cuda(mnist, user, run_on_commit):
    job = run_mnist_job(user=user, dataset=mnist, run_on_commit=run_on_commit,
                        explainers=["gradient_shap", "integrated_gradients", "lime"], params=FAST, rows={"random": 2})
    run = job.runs.get()
    assert run.metrics["device"].startswith("cuda") and run.metrics["accuracy"] > 0.5
    assert Explanation.objects.filter(job=job).count() == 6
