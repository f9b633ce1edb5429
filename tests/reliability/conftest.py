"""A real stack the reliability tests may break: kill workers (or their pool children), stop and restart Redis on
its port, start workers with their own settings, and read the stack's SQLite database directly.

Built on ``tests.stack.AppStack`` (a subclass here, so the shared helper stays as its owner wrote it).
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability import corpus
from tests.stack import ApiClient, AppStack, Service, WorkerSpec, command_adapt, executable

# Short sweeper clocks so a dead worker's job is picked up in seconds, small batches so jobs have many.
FAULT_ENV = {
    "EXPLAINER_JOB_STALE_SECONDS": "20",
    "EXPLAINER_HEARTBEAT_SECONDS": "3",
    "EXPLAINER_JOB_SWEEP_SECONDS": "2",
    "EXPLAINER_JOB_QUEUE_TIMEOUT_SECONDS": "20",
    "EXPLAINER_BATCH_SIZE": "2",
}


def child_pids(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


class FaultStack(AppStack):
    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal a service's whole process group (a worker with its pool) and forget it."""
        service = self.service(name)
        try:
            os.killpg(service.process.pid, sig)
        except ProcessLookupError:
            pass
        service.process.wait(timeout=20)
        self.services.remove(service)

    def pool_children(self, name: str) -> list[int]:
        return child_pids(self.service(name).process.pid)

    def worker_start(self, name: str, *, concurrency: int = 1, env: dict[str, str] | None = None) -> Service:
        """Another worker on the CPU and GPU queues, under its own node name, optionally with other settings."""
        argv = command_adapt(self.commands["worker"], {"--concurrency": str(concurrency), "-Q": "celery,gpu",
                                                       "-n": f"{name}-{uuid.uuid4().hex[:6]}@%h"})
        service = self._spawn(name, executable(argv), env={**self.env, **(env or {})})
        self._wait(service, lambda: " ready." in service.log_text(), timeout=120, what=f"Celery worker {name}")
        return service

    @property
    def redis_port(self) -> int:
        return int(self.redis_url.rsplit(":", 1)[1].split("/")[0])

    def redis_stop(self) -> None:
        self.kill("redis", signal.SIGTERM)

    def redis_start(self) -> None:
        """Redis again on the same port (empty: the test stack keeps no data on disk, like a crash would)."""
        import shutil

        port = self.redis_port
        service = self._spawn("redis", [shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1",
                                        "--save", "", "--appendonly", "no", "--dir", str(self.tmp / "redis"),
                                        "--daemonize", "no"])

        def ping() -> bool:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")

        self._wait(service, ping, timeout=20, what="redis-server")

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.database_url.removeprefix("sqlite:///"), timeout=30)

    def query(self, sql: str, *params) -> list[tuple]:
        with self.db() as connection:
            return connection.execute(sql, params).fetchall()

    def users_create(self, names: list[str]) -> dict[str, tuple[str, str]]:
        """Users in one go (no password hashing): name -> (API token, session id for the pages)."""
        code = (
            "from django.contrib.auth import get_user_model, SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY\n"
            "from django.contrib.sessions.backends.db import SessionStore\n"
            "from rest_framework.authtoken.models import Token\n"
            f"for name in {names!r}:\n"
            "    u = get_user_model()(username=name); u.set_unusable_password(); u.save()\n"
            "    s = SessionStore(); s[SESSION_KEY] = str(u.pk)\n"
            "    s[BACKEND_SESSION_KEY] = 'django.contrib.auth.backends.ModelBackend'\n"
            "    s[HASH_SESSION_KEY] = u.get_session_auth_hash(); s.create()\n"
            "    print('USER', name, Token.objects.create(user=u).key, s.session_key)\n"
        )
        out = self.manage("shell", "--no-imports", "-c", code)
        return {parts[1]: (parts[2], parts[3]) for line in out.splitlines() if (parts := line.split())[0] == "USER"}


def wait_for(check, *, timeout: float, what: str, interval: float = 0.2) -> None:
    """Poll ``check`` until true; bounded, so a broken stack fails the test instead of hanging it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def table_file(tmp_dir: Path) -> Path:
    path = tmp_dir / "table.csv"
    path.write_bytes(corpus.clean_csv())
    return path


def dataset_ready(api: ApiClient, file: Path) -> int:
    dataset = api.upload("/api/datasets/", file, name="table")
    api.json("PUT", f"/api/datasets/{dataset['id']}/schema/",
             {"label": "label", "features": ["age", "city", "income"], "row_name": "name"})
    return dataset["id"]


@pytest.fixture(scope="module")
def fault_stack() -> Iterator[FaultStack]:
    stack = FaultStack(name="faults", workers=[WorkerSpec("worker", queues="celery,gpu", concurrency=2)],
                       extra_env=FAULT_ENV)
    with stack:
        yield stack


@pytest.fixture(scope="module")
def fault_api(fault_stack, tmp_path_factory) -> tuple[ApiClient, int]:
    api = fault_stack.api(fault_stack.user_create("fault-alice", "fault-alice-pass-2026"))
    return api, dataset_ready(api, table_file(tmp_path_factory.mktemp("faults")))
