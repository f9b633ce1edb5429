"""Models users bring: ONNX graphs, skops files of scikit-learn models, safetensors weights of a known network.

No format here runs code when it is read: ONNX is a graph of the runtime's own operators, a skops file is loaded
only when every type it names is on ``SKOPS_TRUSTED`` (or skops's own trusted list), safetensors is numbers. Python
pickles, joblib files and TorchScript archives are recognised by their first bytes and refused with a sentence
on how to export instead (``format_refusal``).

An uploaded table model is called like the app's own: ``predict_proba`` on the encoded matrix of
``explanations.ml.tabular`` (every explainer works with it). ``UploadedTableModel`` decodes those rows back to the
columns the model was trained on (category codes to their values) and feeds them by name, or by position when
the model has one input as wide as the features; the model's classes are matched to the dataset's label values
by text, and a dataset class the model does not know gets probability 0. It pickles as the uploaded bytes, so a
job's worker can store it beside the app's own models and load it back.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from explanations.ml.explainers.base import FeatureSpace, Predictor
from explanations.ml.lazy import lazy
from explanations.ml.tabular import MISSING, category_text
from explanations.ml.uploaded_images import ImageModelRefused, onnx_image_model_load
from explanations.ml.uploaded_networks import ARCHITECTURES, WeightsRefused, network_load

ort = lazy("onnxruntime")
skops_io = lazy("skops.io")

FORMATS = {"onnx": "ONNX", "skops": "skops (scikit-learn)", "safetensors": "safetensors weights"}
EXPORT_HELP = (
    "Upload an ONNX file (scikit-learn: skl2onnx.to_onnx(model, X[:1]); PyTorch: torch.onnx.export(...)), "
    "a skops file of a scikit-learn model (skops.io.dump(model, 'model.skops')), or safetensors weights of the app's "
    "CNN or MLP or of torchvision's resnet18, vgg11, vgg16 or mobilenet_v3_small "
    "(safetensors.torch.save_file(model.state_dict(), 'model.safetensors')).")
CHECK_ROWS = 20
SKOPS_UNPACKED_MAX = 1024 * 1024 * 1024  # what a skops archive may unpack to: a zip bomb stops here
# Types a scikit-learn model's file names beyond skops's own trusted list: arrays, dtypes, the tree structures
# and fitted parts of estimators. Anything that can hold a function (FunctionTransformer, a callable) is not here.
SKOPS_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.sparse.", "builtins.slice", "collections.OrderedDict")
SKOPS_UNTRUSTED_MARKS = ("FunctionTransformer", "function", "method", "builtins.eval", "builtins.exec", "operator.",
                         "functools.", "_frozen_importlib")
TREE_ENSEMBLES = ("RandomForestClassifier", "ExtraTreesClassifier", "GradientBoostingClassifier",
                  "DecisionTreeClassifier", "HistGradientBoostingClassifier")


class ModelFileRefused(ValueError):
    """An upload the app will not load; the message is the sentence the user reads."""


# ---------------------------------------------------------------- what the file is


def format_refusal(content: bytes, declared: str) -> str | None:
    """Why this file cannot be loaded as ``declared``, judged from its bytes alone; None when it may be."""
    head = content[:8]
    if declared not in FORMATS:
        return f"“{declared[:40]}” is not a format the app reads. {EXPORT_HELP}"
    if not content:
        return "The file is empty."
    if head[:1] == b"\x80" and head[1:2] in {b"\x02", b"\x03", b"\x04", b"\x05"}:
        return f"This is a Python pickle (or joblib) file; loading one runs code, so the app never does. {EXPORT_HELP}"
    if head[:2] in {b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda"} or head[:3] in {b"\x1f\x8b\x08", b"BZh"} \
            or head[:6] == b"\xfd7zXZ\x00" or head[:4] == b"\x04\x22\x4d\x18":
        return f"This is a compressed file such as a joblib dump; the app does not load those. {EXPORT_HELP}"
    if head[:4] == b"PK\x03\x04":
        names = _zip_names(content)
        if names is None:
            return "This ZIP archive is damaged or cut off; save the model again."
        if any(n.endswith(("data.pkl", "constants.pkl")) or "/code/" in n for n in names):
            return ("This is a TorchScript or torch.save file; loading one runs code, so the app never does. "
                    f"{EXPORT_HELP}")
        if declared != "skops":
            return f"This is a ZIP archive, not {FORMATS[declared]}. {EXPORT_HELP}"
        if "schema.json" not in names:
            return f"This ZIP archive is not a skops file (it has no schema.json). {EXPORT_HELP}"
        return None
    if declared == "skops":
        return f"This is not a skops file (a skops file is a ZIP archive). {EXPORT_HELP}"
    if declared == "safetensors" and not (len(content) > 9 and content[8:9] == b"{"):
        return f"This is not a safetensors file. {EXPORT_HELP}"
    return None


def _zip_names(content: bytes) -> list[str] | None:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return None


def _skops_bomb_check(content: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        raise ModelFileRefused("This skops file is damaged or cut off; save it again with skops.io.dump.") from None
    if unpacked > SKOPS_UNPACKED_MAX:
        raise ModelFileRefused(f"This skops file unpacks to {unpacked / 1024**3:.1f} GB, more than the 1 GB the app "
                               "reads; upload a smaller model.")


def skops_types_refused(types: Sequence[str]) -> list[str]:
    """The types of a skops file that neither skops nor the app trusts."""
    return [t for t in types if not t.startswith(SKOPS_TRUSTED_PREFIXES) or any(m in t for m in SKOPS_UNTRUSTED_MARKS)]


# ---------------------------------------------------------------- columns in, classes out


def name_key(name: str) -> str:
    """Column names as converters rewrite them (skl2onnx turns ``capital-gain`` into ``capital_gain``)."""
    return re.sub(r"[^0-9a-z]+", "_", str(name).lower()).strip("_")


@dataclass
class TableColumns:
    """The dataset's feature columns the model reads: names, and whether each was numbers or text in the file."""

    names: list[str]
    numeric: list[bool]

    def frame(self, space: FeatureSpace, X: np.ndarray) -> pd.DataFrame:
        """Encoded rows back to the table the model was trained on: codes become their values again."""
        X = np.asarray(X, dtype=np.float64)
        columns = {}
        for j, name in enumerate(self.names):
            if j in space.categories:
                categories = space.categories[j]
                codes = np.clip(np.rint(X[:, j]).astype(int), 0, len(categories) - 1)
                texts = np.array(categories, dtype=object)[codes]
                if self.numeric[j]:
                    columns[name] = np.array([np.nan if t == MISSING else float(t) for t in texts], dtype=np.float64)
                else:
                    columns[name] = np.array([np.nan if t == MISSING else t for t in texts], dtype=object)
            else:
                columns[name] = X[:, j]
        return pd.DataFrame(columns)


def class_order(model_labels: Sequence[Any], class_values: Sequence[str]) -> np.ndarray:
    """For each of the model's outputs, the dataset class it is (by text); refused when one is unknown."""
    position = {str(v): i for i, v in enumerate(class_values)}
    texts = [category_text(v) for v in model_labels]
    unknown = [t for t in texts if t not in position]
    if unknown:
        raise ModelFileRefused(
            f"The model predicts {', '.join(repr(t) for t in unknown[:5])}, which {'is' if len(unknown) == 1 else 'are'} "
            f"not among the label's values ({', '.join(repr(str(v)) for v in class_values[:8])}). Train it on this "
            "label column, or pick the matching label on the schema page.")
    if len(set(texts)) < 2:
        raise ModelFileRefused("The model knows fewer than two classes; there is nothing to explain.")
    return np.array([position[t] for t in texts], dtype=int)


# ---------------------------------------------------------------- the runtimes


class _OnnxTable:
    """One ONNX session over table rows; inputs by column name (one per column) or one input of every column."""

    def __init__(self, content: bytes, columns: TableColumns) -> None:
        try:
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
            self.session = ort.InferenceSession(content, sess_options=options, providers=providers)
        except Exception as error:
            raise ModelFileRefused(f"onnxruntime cannot read this ONNX file: {str(error).splitlines()[0][:240]}") from None
        self.columns = columns
        inputs = self.session.get_inputs()
        by_key = {name_key(n): n for n in columns.names}
        if len(inputs) == 1 and _width(inputs[0]) in (len(columns.names), None) and name_key(inputs[0].name) not in by_key:
            self.by, self.feeds = "order", [(inputs[0].name, None, inputs[0].type)]
            if "string" not in inputs[0].type and not all(columns.numeric):
                text = [n for n, num in zip(columns.names, columns.numeric) if not num]
                raise ModelFileRefused(
                    f"The model takes one numeric input, but {', '.join(text[:5])} hold text. Export the model with one "
                    "input per column, named as the columns (skl2onnx: initial_types=[(column, type), ...]).")
        else:
            missing = [i.name for i in inputs if name_key(i.name) not in by_key]
            if missing:
                raise ModelFileRefused(
                    f"The model's input{'s' if len(missing) > 1 else ''} {', '.join(missing[:6])} "
                    f"match{'' if len(missing) > 1 else 'es'} no feature column of this dataset "
                    f"({', '.join(columns.names[:8])}{', …' if len(columns.names) > 8 else ''}). Name the inputs as the "
                    "columns, or give the model one input with every feature in the schema's order.")
            self.by = "name"
            self.feeds = [(i.name, by_key[name_key(i.name)], i.type) for i in inputs]
        outputs = self.session.get_outputs()
        self.probability_output = next((o.name for o in outputs if o.type.startswith("seq(map")), None) or next(
            (o.name for o in outputs if o.type == "tensor(float)" and "prob" in o.name.lower()), None) or next(
            (o.name for o in outputs if o.type in {"tensor(float)", "tensor(double)"}), None)
        if self.probability_output is None:
            raise ModelFileRefused("The model has no output of class probabilities; export the classifier's "
                                   "predict_proba (skl2onnx does by default).")
        self.label_output = next((o.name for o in outputs if o.name != self.probability_output
                                  and o.type in {"tensor(string)", "tensor(int64)"}), None)

    def _feed(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        feed = {}
        for input_name, column, kind in self.feeds:
            values = frame.to_numpy() if column is None else frame[[column]].to_numpy()
            if "string" in kind:
                feed[input_name] = np.array([["" if pd.isna(v) else category_text(v) for v in row] for row in values],
                                            dtype=object)
            else:
                dtype = {"tensor(double)": np.float64, "tensor(int64)": np.int64, "tensor(int32)": np.int32}.get(kind, np.float32)
                feed[input_name] = np.asarray(pd.DataFrame(values).apply(pd.to_numeric, errors="coerce"), dtype=np.float64).astype(dtype)
        return feed

    def run(self, frame: pd.DataFrame) -> tuple[np.ndarray, list[Any] | None, np.ndarray | None]:
        """Probabilities (n, outputs), the class label of each output when the model names them, its labels."""
        wanted = [self.probability_output] + ([self.label_output] if self.label_output else [])
        results = self.session.run(wanted, self._feed(frame))
        raw, labels = results[0], results[1] if len(results) > 1 else None
        if isinstance(raw, list):  # ZipMap: one {class: probability} per row
            keys = list(raw[0].keys()) if raw else []
            return np.array([[row[k] for k in keys] for row in raw], dtype=np.float64), keys, labels
        return np.asarray(raw, dtype=np.float64).reshape(len(frame), -1), None, labels


def _width(onnx_input: Any) -> int | None:
    shape = onnx_input.shape
    return shape[1] if len(shape) == 2 and isinstance(shape[1], int) else None


def _skops_load(content: bytes) -> Any:
    _skops_bomb_check(content)
    try:
        types = skops_io.get_untrusted_types(data=content)
    except Exception:
        raise ModelFileRefused("This skops file is damaged or cut off; save it again with skops.io.dump.") from None
    refused = skops_types_refused(types)
    if refused:
        raise ModelFileRefused(
            f"This skops file contains types the app does not trust, so it was not loaded: {', '.join(refused[:10])}"
            f"{' …' if len(refused) > 10 else ''}. Upload a model made of scikit-learn's own estimators and "
            "transformers (no custom classes or functions), or export it to ONNX.")
    try:
        model = skops_io.loads(content, trusted=list(types))
    except Exception as error:
        raise ModelFileRefused(f"skops could not load this file: {str(error).splitlines()[0][:200] if str(error) else type(error).__name__}") from None
    if not hasattr(model, "predict_proba") or not hasattr(model, "classes_"):
        raise ModelFileRefused("The skops file holds no fitted classifier with predict_proba; upload a fitted classifier "
                               "(for an SVM, SVC(probability=True)).")
    return model


def _skops_columns_check(model: Any, columns: TableColumns) -> None:
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        width = getattr(model, "n_features_in_", len(columns.names))
        if width != len(columns.names):
            raise ModelFileRefused(f"The model was trained on {width} columns without names; this dataset has "
                                   f"{len(columns.names)} features. Train it on a table with the dataset's column names.")
        return
    missing = [str(n) for n in names if str(n) not in columns.names]
    if missing:
        raise ModelFileRefused(
            f"The model was trained on column{'s' if len(missing) > 1 else ''} {', '.join(missing[:6])}, which "
            f"{'are' if len(missing) > 1 else 'is'} not among this dataset's features "
            f"({', '.join(columns.names[:8])}{', …' if len(columns.names) > 8 else ''}). Tick them as features on the "
            "schema page, or train the model on these columns.")


# ---------------------------------------------------------------- the model a job calls


@dataclass
class UploadedTableModel:
    """An uploaded classifier of table rows, called on encoded rows like the app's own (see the module's doc)."""

    format: str
    content: bytes = field(repr=False)
    columns: TableColumns
    space: FeatureSpace
    outputs: np.ndarray | None = None  # dataset class of each model output, once known
    runtime: Any = field(default=None, repr=False, compare=False)

    @property
    def classes_(self) -> np.ndarray:
        return np.arange(len(self.space.class_names))

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "runtime": None}

    def _runtime(self) -> Any:
        if self.runtime is None:
            if self.format == "onnx":
                self.runtime = _OnnxTable(self.content, self.columns)
            else:
                model = _skops_load(self.content)
                _skops_columns_check(model, self.columns)
                self.runtime = model
        return self.runtime

    def raw_proba(self, X: np.ndarray) -> tuple[np.ndarray, list[Any] | None, Any]:
        """The model's own outputs on encoded rows: probabilities, the labels it names for them, its labels."""
        frame = self.columns.frame(self.space, X)
        runtime = self._runtime()
        if self.format == "onnx":
            return runtime.run(frame)
        names = getattr(runtime, "feature_names_in_", None)
        frame = frame.to_numpy() if names is None else frame[[str(n) for n in names]]
        return np.asarray(runtime.predict_proba(frame), dtype=np.float64), list(runtime.classes_), None

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        raw, _, _ = self.raw_proba(X)
        full = np.zeros((raw.shape[0], len(self.space.class_names)), dtype=np.float64)
        full[:, self.outputs] = raw
        return full

    @property
    def tree_ensemble(self) -> bool:
        final = self._runtime()
        final = final.steps[-1][1] if hasattr(final, "steps") else final
        return self.format == "skops" and type(final).__name__ in TREE_ENSEMBLES

    def predictor(self, key: str, space: FeatureSpace) -> Predictor:
        """The hook ``classifiers.predictor_build`` calls: model-agnostic explainers take it as any classifier, and
        a skops pipeline ending in a tree ensemble also offers its trees to TreeSHAP (``tree_hooks``)."""
        return Predictor(predict_proba=self.predict_proba, key=key, **(self.tree_hooks() if self.tree_ensemble else {}))

    def tree_hooks(self) -> dict[str, Any]:
        """TreeSHAP's hooks for ``ColumnTransformer`` → tree ensemble: the trees, encoded rows → the trees' input,
        and each feature's columns of that input (one-hot columns summed back); none when the layout is unclear."""
        import copy

        pipeline = self._runtime()
        if not hasattr(pipeline, "steps") or len(pipeline.steps) != 2 or not hasattr(pipeline.steps[0][1], "output_indices_"):
            return {}
        prep, trees = pipeline.steps[0][1], copy.copy(pipeline.steps[-1][1])
        trees.classes_ = np.asarray(self.outputs)  # its outputs as the dataset's class codes, as the app's own models
        names = [str(n) for n in getattr(prep, "feature_names_in_", self.columns.names)]
        groups: list[list[int]] = [[] for _ in self.space.feature_names]
        for name, transformer, columns in prep.transformers_:
            part = prep.output_indices_.get(name, slice(0, 0))
            width = part.stop - part.start
            if width == 0:
                continue
            columns = [names[c] if isinstance(c, (int, np.integer)) else str(c) for c in columns]
            last = transformer.steps[-1][1] if hasattr(transformer, "steps") else transformer
            if width == len(columns):
                widths = [1] * len(columns)
            elif type(last).__name__ == "OneHotEncoder" and getattr(last, "drop", None) is None:
                widths = [len(c) for c in last.categories_]
            else:
                return {}
            if sum(widths) != width or any(c not in self.columns.names for c in columns):
                return {}
            start = part.start
            for column, size in zip(columns, widths):
                groups[self.columns.names.index(column)].extend(range(start, start + size))
                start += size

        def transform(X: np.ndarray) -> np.ndarray:
            frame = self.columns.frame(self.space, X)[names]
            out = prep.transform(frame)
            return np.asarray(out.toarray() if hasattr(out, "toarray") else out, dtype=np.float64)

        return {"tree_model": trees, "transform": transform, "groups": groups}


@dataclass
class UploadedNetworkTable:
    """The app's MLP with uploaded weights: it reads the encoded rows as they are (codes for categories) and its
    output j is the dataset's class j."""

    network: Any

    @property
    def classes_(self) -> np.ndarray:
        return self.network.classes_

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.network.predict_proba(np.asarray(X, dtype=np.float64))

    def predictor(self, key: str, space: FeatureSpace) -> Predictor:
        return Predictor(predict_proba=self.predict_proba, key=key)


def table_model_load(content: bytes, *, format: str, space: FeatureSpace, numeric: Sequence[bool],
                     class_values: Sequence[str], architecture: str = "") -> Any:
    """Load and check an uploaded table classifier: refused (``ModelFileRefused``) unless its file, inputs and classes fit."""
    refusal = format_refusal(content, format)
    if refusal:
        raise ModelFileRefused(refusal)
    if format == "safetensors":
        try:
            network = network_load(content, architecture=architecture, n_classes=len(class_values),
                                   n_features=len(space.feature_names))
        except WeightsRefused as error:
            raise ModelFileRefused(str(error)) from None
        return UploadedNetworkTable(network)
    model = UploadedTableModel(format=format, content=content, columns=TableColumns(list(space.feature_names),
                                                                                    list(numeric)), space=space)
    model._runtime()
    return model


def image_model_load(content: bytes, *, format: str, architecture: str, n_classes: int,
                     image_shape: tuple[int, int, int], check_images: np.ndarray | None = None) -> Any:
    """An image classifier: network weights as a fitted ``TorchCNNClassifier`` (gradient explainers read its
    module), or an ONNX graph over the pixels (``uploaded_images``: explainers that only call the model)."""
    refusal = format_refusal(content, format)
    if refusal:
        raise ModelFileRefused(refusal)
    if format == "onnx":
        try:
            return onnx_image_model_load(content, image_shape=image_shape, n_classes=n_classes,
                                         check_images=None if check_images is None else check_images[:CHECK_ROWS])
        except ImageModelRefused as error:
            raise ModelFileRefused(str(error)) from None
    if format != "safetensors":
        raise ModelFileRefused("For images the app reads ONNX graphs and safetensors weights of a network it knows; "
                               "skops models are for tables.")
    try:
        return network_load(content, architecture=architecture, n_classes=n_classes, image_shape=image_shape)
    except WeightsRefused as error:
        raise ModelFileRefused(str(error)) from None


def outputs_match(model: Any, X: np.ndarray, class_values: Sequence[str]) -> dict[str, Any]:
    """Run the model on ``CHECK_ROWS`` rows and learn which dataset class each output is; refused when they
    do not add up. Returns what is recorded: the model's class labels in output order and how inputs are read."""
    rows = np.asarray(X[:CHECK_ROWS])
    if not isinstance(model, UploadedTableModel):  # the app's own networks: output j is class j
        proba = np.asarray(model.predict_proba(rows), dtype=np.float64)
        _probabilities_check(proba, len(class_values))
        return {"class_labels": [str(v) for v in class_values], "inputs": getattr(model, "layout", "") or "network"}
    try:
        proba, labels, predicted = model.raw_proba(rows)
    except ModelFileRefused:
        raise
    except Exception as error:
        raise ModelFileRefused(f"The model failed on the dataset's rows: {str(error).splitlines()[0][:240] if str(error) else type(error).__name__}") from None
    if labels is None:  # a plain probability tensor: scikit-learn's sorted class order, checked against its labels
        labels = sorted(class_values, key=_sort_key)[:proba.shape[1]] if proba.shape[1] == len(class_values) else None
        if labels is None:
            raise ModelFileRefused(
                f"The model gives {proba.shape[1]} probabilities per row but the label has {len(class_values)} classes, "
                "and it does not name them; export it with its class names (skl2onnx's default ZipMap output).")
        if predicted is not None and len(predicted):
            named = [category_text(v) for v in np.asarray(predicted).ravel()]
            if any(named[i] != str(labels[int(np.argmax(proba[i]))]) for i in range(len(named))):
                raise ModelFileRefused("The model's probability columns are not in sorted class order and it does "
                                       "not name them; export it with skl2onnx's default ZipMap output.")
    model.outputs = class_order(labels, class_values)
    _probabilities_check(proba, proba.shape[1])
    runtime = model._runtime()
    return {"class_labels": [category_text(v) for v in labels],
            "inputs": getattr(runtime, "by", "name" if hasattr(runtime, "feature_names_in_") else "order")}


def _sort_key(value: str) -> tuple[int, Any]:
    try:
        return (0, float(value))
    except ValueError:
        return (1, value)


def _probabilities_check(proba: np.ndarray, width: int) -> None:
    if proba.ndim != 2 or proba.shape[1] != width:
        raise ModelFileRefused(f"The model returned probabilities of shape {proba.shape}; expected (rows, {width}).")
    if not np.isfinite(proba).all():
        raise ModelFileRefused("The model returned NaN or infinite probabilities on the dataset's rows.")
    if (proba < -1e-6).any() or not np.allclose(proba.sum(axis=1), 1.0, atol=1e-3):
        raise ModelFileRefused("The model's outputs are not probabilities (each row must add up to 1); export "
                               "predict_proba, not the raw scores.")


__all__ = ["ARCHITECTURES", "EXPORT_HELP", "FORMATS", "ModelFileRefused", "UploadedTableModel", "format_refusal",
           "image_model_load", "outputs_match", "skops_types_refused", "table_model_load"]
