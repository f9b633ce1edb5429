"""Demo datasets that ship inside scikit-learn, exported as CSV so they go through the same upload path."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from django.conf import settings
from django.core.files import File
from django.dispatch import Signal

# Sent by ``demo_setup`` once the demo account owns its datasets (``owner=``). Other apps add what a first visit
# should find (explanations: a finished example job) and answer a sentence saying what they made.
demo_account_ready = Signal()


@dataclass(frozen=True)
class DemoDataset:
    key: str
    name: str
    description: str
    loader: str
    label: str
    class_names: dict[str, str] | None = None


DEMOS = {
    d.key: d
    for d in [
        DemoDataset("breast_cancer", "Breast cancer (Wisconsin)", "569 tumours, 30 measurements: malignant or benign?",
                    "load_breast_cancer", "diagnosis"),
        DemoDataset("wine", "Wine", "178 wines, 13 chemical measurements: which of three cultivars?", "load_wine", "cultivar"),
        DemoDataset("iris", "Iris", "150 flowers, 4 measurements: which of three species?", "load_iris", "species"),
    ]
}


def demo_csv_path(key: str) -> Path:
    """Export the demo to ``var/demo/<key>.csv`` once, with class names instead of codes."""
    demo = DEMOS[key]
    path = Path(settings.VAR_DIR) / "demo" / f"{key}.csv"
    if path.exists():
        return path
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, demo.loader)(as_frame=True)
    frame: pd.DataFrame = bunch.frame.copy()
    target = frame.pop("target")
    frame[demo.label] = [str(bunch.target_names[i]) for i in target]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    frame.to_csv(tmp, index=False)
    tmp.replace(path)
    return path


def demo_dataset_existing(*, owner, key: str):
    """The owner's copy of this demo that is still usable, if any (a second click on the card opens it)."""
    from .models import Dataset, DatasetStatus

    return (Dataset.objects.filter(owner=owner, is_demo=True, name=DEMOS[key].name)
            .exclude(status=DatasetStatus.FAILED).order_by("-pk").first())


def demo_dataset_create(*, owner, key: str):
    from .services import dataset_create, dataset_schema_default, dataset_schema_set

    demo = DEMOS[key]
    path = demo_csv_path(key)
    with open(path, "rb") as handle:
        dataset = dataset_create(owner=owner, file=File(handle, name=path.name), name=demo.name, is_demo=True)
    schema = dataset_schema_default(dataset=dataset)
    schema["label"] = demo.label
    schema["features"] = [c for c in dataset.column_names if c != demo.label]
    schema["categorical"] = []
    schema["class_names"] = {v: v.replace("_", " ").capitalize() for v, _ in dataset.label_values[demo.label]}
    return dataset_schema_set(dataset=dataset, **schema)
