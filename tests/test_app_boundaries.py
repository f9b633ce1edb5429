"""Which app may import which, read from the source (imports inside functions count too)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def imports_of(module: str, paths: list[Path]) -> list[str]:
    return sorted(f"{p.relative_to(ROOT)}: {name}" for p in paths for name in imported_modules(p)
                  if name == module or name.startswith(module + "."))


def test_the_finder_sees_function_local_imports(tmp_path):
    source = tmp_path / "sample.py"
    source.write_text("import os\n\ndef f():\n    from explanations.services import job_delete\n    import explanations.models\n"
                      "    from . import sibling\n")
    assert imported_modules(source) == {"os", "explanations.services", "explanations.services.job_delete",
                                        "explanations.models"}


def test_datasets_imports_nothing_from_explanations():
    paths = sorted((ROOT / "datasets").rglob("*.py"))
    assert len(paths) > 10
    assert imports_of("explanations", paths) == []


@pytest.mark.parametrize("module", ["classifiers.py", "modalities.py", "text_models.py", "image_models.py"])
def test_classifier_registries_know_no_jobs(module):
    path = ROOT / "explanations" / "ml" / module
    assert imports_of("explanations.job_data", [path]) == [] and imports_of("datasets", [path]) == []


APP_SIDE = ["django", "accounts", "datasets", "explainer_site"] + [
    f"explanations.{name}" for name in ("api", "exports", "insights", "job_data", "models", "quotas", "receivers",
                                        "selectors", "services", "summaries", "tasks", "text_image_run", "views",
                                        "pipeline", "job_steps")]


def test_the_ml_package_imports_no_django_and_no_app_module():
    paths = sorted((ROOT / "explanations" / "ml").rglob("*.py"))
    assert len(paths) > 30
    assert [hit for module in APP_SIDE for hit in imports_of(module, paths)] == []


@pytest.mark.parametrize("source", ["from django.db import models\n", "def f():\n    import django.conf\n",
                                    "from explanations import models\n", "from explanations.services import job_delete\n",
                                    "def f():\n    from datasets.selectors import dataset_frame_load\n"])
def test_ruff_fails_on_a_django_or_app_import_in_the_ml_package(source):
    """The CI check itself (``explanations/ml/ruff.toml``): ruff reads the snippet as if it were a file of the package."""
    command = [sys.executable, "-m", "ruff", "check", "--no-cache", "--select", "TID251", "--stdin-filename",
               "explanations/ml/probe.py", "-"]
    bad = subprocess.run(command, input=source, capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 1 and "TID251" in bad.stdout, bad.stdout + bad.stderr
    fine = subprocess.run(command, input="import numpy\n", capture_output=True, text=True, cwd=ROOT)
    assert fine.returncode == 0, fine.stdout + fine.stderr
