"""Shared fixtures: a real app stack (Redis, gunicorn, a Celery worker) for the integration and browser tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.stack import DATASETS_DIR, AppStack, WorkerSpec


@pytest.fixture(scope="session")
def app_stack() -> Iterator[AppStack]:
    """SQLite + Redis + gunicorn + one worker on every queue (the what-if editor's ``interactive`` too): what most
    journeys need, started once."""
    stack = AppStack(name="app", workers=[WorkerSpec("worker", queues="celery,gpu,interactive", concurrency=2)])
    with stack:
        yield stack


@pytest.fixture(scope="session")
def datasets_dir():
    assert (DATASETS_DIR / "heart.csv").is_file(), f"the shared datasets are missing from {DATASETS_DIR}"
    return DATASETS_DIR


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """When a test that used a stack fails, put the tail of every service's log in its report."""
    report = yield
    if report.failed:
        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, AppStack) and value.services:
                report.sections.append((f"logs of the {value.name} stack", value.logs_tail()))
    return report


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` run when a CUDA device is present; without one they are deselected (and the summary
    line says how many), not skipped: nothing else is ever left out."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items:
        return
    import torch

    if torch.cuda.is_available():
        return
    config.hook.pytest_deselected(items=gpu_items)
    items[:] = [item for item in items if not item.get_closest_marker("gpu")]
    config.stash[NO_CUDA_DESELECTED] = len(gpu_items)


NO_CUDA_DESELECTED = pytest.StashKey[int]()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    count = config.stash.get(NO_CUDA_DESELECTED, 0)
    if count:
        terminalreporter.write_line(f"{count} test(s) marked gpu deselected: this machine has no CUDA device")
