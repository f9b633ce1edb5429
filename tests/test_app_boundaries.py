"""Which app may import which, read from the source (imports inside functions count too)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path, package: str | None = None) -> set[str]:
    """Every name an import statement of ``path`` names; relative ones only when ``package`` (the package the
    file is in) says what they are relative to."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                module = node.module
            elif package is None:
                continue
            else:
                parts = package.split(".")
                module = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            if module:
                names.add(module)
                names.update(f"{module}.{alias.name}" for alias in node.names)
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
                                        "whatifs", "pipeline", "job_steps")]


def test_the_ml_package_imports_no_django_and_no_app_module():
    paths = sorted((ROOT / "explanations" / "ml").rglob("*.py"))
    assert len(paths) > 30
    assert [hit for module in APP_SIDE for hit in imports_of(module, paths)] == []


@pytest.mark.parametrize("source", ["from django.db import models\n", "def f():\n    import django.conf\n",
                                    "from explanations import models\n", "from explanations.services import job_delete\n",
                                    "from explanations.services.job_state import job_fail\n",
                                    "def f():\n    from datasets.selectors import dataset_frame_load\n"])
def test_ruff_fails_on_a_django_or_app_import_in_the_ml_package(source):
    """The CI check itself (``explanations/ml/ruff.toml``): ruff reads the snippet as if it were a file of the package."""
    command = [sys.executable, "-m", "ruff", "check", "--no-cache", "--select", "TID251", "--stdin-filename",
               "explanations/ml/probe.py", "-"]
    bad = subprocess.run(command, input=source, capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 1 and "TID251" in bad.stdout, bad.stdout + bad.stderr
    fine = subprocess.run(command, input="import numpy\n", capture_output=True, text=True, cwd=ROOT)
    assert fine.returncode == 0, fine.stdout + fine.stderr


# ---------------------------------------------------------------- no import circles among the app's own modules

APPS = ("accounts", "datasets", "explainer_site", "explanations")
# Function-local imports that go back up to a module that imports this one, each a circle left for later (the
# test asserts each edge still exists). Empty since the services became a package whose lower modules
# (``services.job_state``, ``services.results_save``) import no service: add none.
KNOWN_BACK_EDGES: set[tuple[str, str]] = set()


def app_modules() -> dict[str, Path]:
    modules = {}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" not in path.parts:
                parts = list(path.relative_to(ROOT).with_suffix("").parts)
                modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def import_graph() -> dict[str, set[str]]:
    """Which of the app's modules each one imports (module-level and function-local imports alike)."""
    modules = app_modules()
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for imported in imported_modules(path, package):
            while imported and imported not in modules:  # ``from a.b import name``: the module is a.b
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


def enqueues_its_tasks(source: str, target: str) -> bool:
    """A module importing its own app's ``tasks`` (a service queueing the task that runs it, from inside a
    function): the one way back up allowed, which makes the circle a service and its own tasks."""
    app = source.split(".")[0]
    return target == f"{app}.tasks" and source != target


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle through each edge that lies on one (shortest first), each written from its smallest module."""
    cycles = set()
    for start, targets in graph.items():
        for target in targets:
            paths, seen = [[target]], {target}
            while paths:  # breadth first from ``target`` back to ``start``
                path = paths.pop(0)
                if path[-1] == start:
                    cycle = [start, *path[:-1]]
                    first = cycle.index(min(cycle))
                    cycles.add(tuple(cycle[first:] + cycle[:first]))
                    break
                for nxt in sorted(graph[path[-1]] - seen):
                    seen.add(nxt)
                    paths.append([*path, nxt])
    return sorted(map(list, cycles), key=lambda c: (len(c), c))


def test_the_cycle_finder_sees_a_circle_and_allows_a_service_and_its_tasks():
    graph = {"app.a": {"app.b"}, "app.b": {"app.c"}, "app.c": {"app.a"}, "app.services": {"app.tasks"},
             "app.tasks": {"app.services"}}
    assert import_cycles(graph) == [["app.services", "app.tasks"], ["app.a", "app.b", "app.c"]]
    assert enqueues_its_tasks("app.services", "app.tasks") and not enqueues_its_tasks("app.tasks", "app.services")
    assert not enqueues_its_tasks("app.a", "other.tasks")


def test_the_graph_reads_relative_and_function_local_imports():
    graph = import_graph()
    assert "datasets.services" in graph["datasets.tasks"]  # ``from .services import ...``
    assert "explanations.services.results_save" in graph["explanations.summaries"]  # inside a function


def test_no_import_circle_among_the_app_modules():
    graph = import_graph()
    for source, target in KNOWN_BACK_EDGES:
        assert target in graph[source], f"{source} no longer imports {target}: remove it from KNOWN_BACK_EDGES"
        graph[source] = graph[source] - {target}
    graph = {source: {t for t in targets if not enqueues_its_tasks(source, t)} for source, targets in graph.items()}
    cycles = import_cycles(graph)
    assert cycles == [], "import circles:\n" + "\n".join(" -> ".join([*c, c[0]]) for c in cycles)


# ---------------------------------------------------------------- no method-name comparison outside the explainers

# Where a method may be asked about by name: its own module (explainers/), the catalogue that lists it, and the
# migrations (history, written once). Data that names methods as a user would (the demo job's explainers, the
# measured rates per key) is not a question and passes anywhere. Nothing else asks "which method is this?".
METHOD_NAMES_ALLOWED = ("/explanations/ml/explainers/", "/explanations/ml/catalogue", "/migrations/")


def explainer_keys() -> set[str]:
    from explanations.ml.catalogue import EXPLAINER_ENTRIES

    return {entry.key for entry in EXPLAINER_ENTRIES}


def method_name_uses(source: str, keys: set[str]) -> list[tuple[int, str]]:
    """Where ``source`` compares with, tests membership of, looks up or passes an explainer key written as a string:
    ``m == "lime"``, ``m in ("lime", "shap")``, ``filter(explainer="shap")``, ``importance["shap"]``,
    ``explainer_for("shap", ...)``, ``case "lime":``. A key inside data (a dict or list written out, a table of
    measured rates) is not a question about the method and is not reported."""

    def named(node: ast.AST | None) -> str | None:
        if isinstance(node, ast.Constant) and node.value in keys:
            return node.value
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return next((name for element in node.elts if (name := named(element))), None)
        return None

    hits = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
        elif isinstance(node, ast.Subscript):
            operands = [node.slice]
        elif isinstance(node, ast.Call):
            operands = [*node.args, *(keyword.value for keyword in node.keywords)]
        elif isinstance(node, ast.MatchValue):
            operands = [node.value]
        else:
            continue
        hits += [(node.lineno, name) for operand in operands if (name := named(operand))]
    return sorted(set(hits))


@pytest.mark.parametrize(("source", "found"), [
    ('if method == "lime":\n    pass\n', [(1, "lime")]),
    ('ok = key in ("anchor", "other")\n', [(1, "anchor")]),
    ('rows = Explanation.objects.filter(job=job, explainer="shap")\n', [(1, "shap")]),
    ('values = importance["shap"] or importance.get("lime")\n', [(1, "lime"), (1, "shap")]),
    ('cls = explainer_for("shap", "tabular")\n', [(1, "shap")]),
    ('match key:\n    case "lime":\n        pass\n', [(2, "lime")]),
    ('RATES = {"lime": 1.4, "shap": 3.1}\nLIBRARIES = ("lime", "shap")\nkind = f"{key}_importance"\n', []),
    ('if method == "limestone" or method == entry.key:\n    pass\n', []),
])
def test_the_method_name_finder(source, found):
    assert method_name_uses(source, {"lime", "anchor", "shap"}) == found


def test_no_method_name_comparison_outside_the_explainers_and_the_catalogue():
    """Issue 14: what is special about a method is declared on its entry or its class, so a new explainer that
    declares the same gets the same treatment everywhere without a line changed elsewhere."""
    keys = explainer_keys()
    assert {"lime", "anchor", "shap"} <= keys
    paths = [path for app in (*APPS, "uploaded_models") for path in sorted((ROOT / app).rglob("*.py"))]
    checked = [path for path in paths
               if not any(part in f"/{path.relative_to(ROOT).as_posix()}" for part in METHOD_NAMES_ALLOWED)]
    assert len(checked) > 100 and ROOT / "explanations" / "summaries.py" in checked
    hits = [f"{path.relative_to(ROOT)}:{line}: {name!r}" for path in checked
            for line, name in method_name_uses(path.read_text(), keys)]
    assert hits == [], "an explainer key compared or looked up outside its module:\n" + "\n".join(hits)
