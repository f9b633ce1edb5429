"""The catalogue: what the web side offers and checks, read without a numeric library or an explainer module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from explanations.ml import catalogue
from explanations.ml.catalogue import CLASSIFIER_ENTRIES, EXPLAINER_ENTRIES, explainer_entry
from explanations.ml.params import params_clean
from tests.test_app_boundaries import ROOT, imported_modules
from tests.unit_fixtures import *  # noqa: F403

EXPECTED = Path(__file__).with_name("explainers_api.json")
HEAVY = ("sklearn", "shap", "lime", "anchor", "torch", "numba", "matplotlib")
IMPLEMENTATIONS = sorted({entry.implementation.partition(":")[0] for entry in EXPLAINER_ENTRIES})


@pytest.mark.django_db
def test_explainer_list_api_is_unchanged(api):
    """Recorded before the catalogue: keys, labels, descriptions, parameters and per-modality variants."""
    response = api.get("/api/explainers/")
    assert response.status_code == 200
    assert response.json() == json.loads(EXPECTED.read_text())


def test_the_catalogue_imports_no_numeric_library():
    ml = ROOT / "explanations" / "ml"
    paths = [*sorted((ml / "catalogue").glob("*.py")), ml / "params.py", ml / "errors.py"]
    assert len(paths) >= 6  # the package's modules: registry, one per kind of data, and the one collecting them
    modules = {name.split(".")[0] for path in paths for name in imported_modules(path)}
    assert modules <= {"__future__", "collections", "dataclasses", "importlib", "math", "numbers", "typing",
                       "explanations"}, modules


def test_every_entry_loads_a_class_that_reads_its_metadata_back():
    """One source of truth: the class's key, label, params and kinds of data are its entries'."""
    for entry in EXPLAINER_ENTRIES:
        cls = entry.load()
        assert (cls.key, cls.label, cls.description, cls.params, cls.result_kind) == (
            entry.key, entry.label, entry.description, entry.params, entry.result_kind)
        assert entry.modality in cls.modalities and cls.catalogue_entry() in EXPLAINER_ENTRIES
    for spec in CLASSIFIER_ENTRIES:
        assert callable(spec.load()), spec.builder


def test_no_explainer_class_writes_its_catalogue_metadata_again():
    """The classes (the Captum ones included) carry what only a worker needs; what a form shows is the entry's."""
    from explanations.ml.explainers.base import BaseExplainer

    metadata = {"key", "label", "description", "params", "result_kind", "modalities", "classifiers",
                "offered_by_default", "detail_name"}
    for entry in EXPLAINER_ENTRIES:
        written = {cls.__qualname__: sorted(metadata & set(vars(cls))) for cls in entry.load().__mro__
                   if cls is not BaseExplainer}
        assert all(not names for names in written.values()), (entry.key, entry.modality, written)


def test_an_abstract_base_class_has_no_catalogue_metadata():
    from explanations.ml.explainers.image import TorchImageExplainer

    assert not hasattr(TorchImageExplainer, "key")
    with pytest.raises(AttributeError, match="no entry in explanations.ml.catalogue"):
        TorchImageExplainer.catalogue_entry()


def test_form_values_are_validated_from_the_catalogue_alone():
    entry = explainer_entry("anchor", "text")
    assert params_clean(entry.params, {"batch_size": "7"})["batch_size"] == 7
    with pytest.raises(ValueError, match="Samples per round must be between 5 and 50"):
        params_clean(entry.params, {"batch_size": "500"})
    assert entry.samples_per_row({"batch_size": 10, "beam_size": 4}) == 10 * 4 * catalogue.RULE_SEARCH_ROUNDS
    assert explainer_entry("lime", "tabular").samples_per_row({"num_samples": 300}) == 300
    assert explainer_entry("integrated_gradients", "tabular").model_kinds == ("mlp",)  # images: every classifier is a network


def test_importing_the_web_urls_loads_no_numeric_library_nor_explainer():
    """What ``runserver``/gunicorn import: the catalogue answers every listing; workers load the rest."""
    script = ("import sys, django; django.setup(); import explainer_site.urls; "
              "print(' '.join(sorted(m for m in sys.modules)))")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "explainer_site.settings.local"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.split())
    assert "explanations.views" in loaded and "explanations.ml.catalogue" in loaded  # it did import the web side
    assert sorted(m for m in loaded if m.split(".")[0] in HEAVY) == []
    assert len(IMPLEMENTATIONS) >= 5 and sorted(loaded & set(IMPLEMENTATIONS)) == []
