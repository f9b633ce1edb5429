"""Which app may import which, read from the source (imports inside functions count too)."""

import ast
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


@pytest.mark.parametrize("module", ["classifiers.py", "modalities/__init__.py", "modalities/text.py", "modalities/image.py"])
def test_classifier_registries_know_no_jobs(module):
    path = ROOT / "explanations" / module
    assert imports_of("explanations.job_data", [path]) == [] and imports_of("datasets", [path]) == []
