"""A real app stack for integration and browser tests: every service a subprocess on loopback, free ports.

Redis (no persistence), optionally PostgreSQL (initdb in a temp dir), ``migrate``, ``collectstatic``, gunicorn
serving ``explainer_site.wsgi`` (static files through WhiteNoise, DEBUG off) and one or more Celery workers.
The service commands are read from ``docker-compose.yml`` so the tests run what production runs; only the
bind address and process counts are adapted to a test box. Every process runs in its own process group and
is killed at teardown; logs stay under ``var/test-logs/<name>/``.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
LOG_ROOT = REPO_ROOT / "var" / "test-logs"
BIN_DIR = Path(sys.executable).parent  # the venv's gunicorn / celery
DATASETS_DIR = next(
    (p for p in (REPO_ROOT.parent / "shared" / "datasets", REPO_ROOT / "shared" / "datasets") if p.is_dir()),
    REPO_ROOT.parent / "shared" / "datasets",
)


class StackError(RuntimeError):
    """A service did not start; the message carries the tail of its log."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def compose_commands(path: Path = COMPOSE_FILE) -> dict[str, list[str]]:
    """Each service's ``command`` from the compose file (exec form), by service name."""
    config = yaml.safe_load(path.read_text())
    return {name: list(service["command"]) for name, service in config["services"].items() if "command" in service}


def command_adapt(argv: list[str], options: dict[str, str]) -> list[str]:
    """Replace the values of the given ``--option value`` pairs (bind address, process counts)."""
    out = list(argv)
    for option, value in options.items():
        if option not in out:
            raise StackError(f"{option} is not in the compose command {shlex.join(argv)}")
        out[out.index(option) + 1] = value
    return out


def executable(argv: list[str]) -> list[str]:
    """Run Python entry points from this interpreter's venv, whatever PATH says."""
    head = argv[0]
    if head == "python":
        return [sys.executable, *argv[1:]]
    if (BIN_DIR / head).exists():
        return [str(BIN_DIR / head), *argv[1:]]
    return argv


@dataclass
class Service:
    name: str
    process: subprocess.Popen
    log_path: Path
    stop_signal: int = signal.SIGTERM

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


@dataclass
class WorkerSpec:
    """A Celery worker: the compose service whose command it runs, and test-box overrides."""

    service: str = "worker"
    queues: str | None = None  # None: as in the compose file
    concurrency: int = 2


@dataclass
class AppStack:
    name: str = "stack"
    postgres: bool = False
    workers: list[WorkerSpec] = field(default_factory=lambda: [WorkerSpec("worker", queues="celery,gpu,interactive")])
    web_workers: int = 2
    settings_module: str = "explainer_site.settings.local"
    extra_env: dict[str, str] = field(default_factory=dict)

    services: list[Service] = field(default_factory=list, init=False)
    base_url: str = field(default="", init=False)
    redis_url: str = field(default="", init=False)
    database_url: str = field(default="", init=False)
    env: dict[str, str] = field(default_factory=dict, init=False)
    tmp: Path | None = field(default=None, init=False)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> AppStack:
        self.log_dir = LOG_ROOT / self.name
        shutil.rmtree(self.log_dir, ignore_errors=True)
        self.log_dir.mkdir(parents=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f"explainer-{self.name}-"))
        self.commands = compose_commands()
        try:
            self._start_redis()
            if self.postgres:
                self._start_postgres()
            else:
                self.database_url = f"sqlite:///{self.tmp / 'db.sqlite3'}"
            self.env = self._app_env()
            self.manage(*self.commands["migrate"][2:])
            self.manage("collectstatic", "--noinput", "-v", "0")
            # Spawn everything, then wait: the processes import Django, pandas and torch in parallel.
            waits = [self._start_web(), *(self._start_worker(spec) for spec in self.workers)]
            for wait in waits:
                wait()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Workers and web first, then the databases; SIGTERM the process group, SIGKILL what is left."""
        for service in reversed(self.services):
            self._stop(service)
        self.services.clear()
        for path in (self.tmp, getattr(self, "_pg_root", None)):
            if path is not None:
                shutil.rmtree(path, ignore_errors=True)
        self.tmp = self._pg_root = None

    def __enter__(self) -> AppStack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _stop(self, service: Service, grace: float = 8.0) -> None:
        proc = service.process
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, service.stop_signal)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        try:  # children (prefork pool, gunicorn workers) may outlive their parent: kill the whole group
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    # ------------------------------------------------------------------ services

    def _spawn(self, name: str, argv: list[str], *, env: dict[str, str] | None = None,
               stop_signal: int = signal.SIGTERM) -> Service:
        log_path = self.log_dir / f"{name}.log"
        log = open(log_path, "ab")
        log.write(f"$ {shlex.join(argv)}\n".encode())
        log.flush()
        process = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        service = Service(name, process, log_path, stop_signal)
        self.services.append(service)
        return service

    def _fail_text(self, service: Service) -> Callable[[], str]:
        def text() -> str:
            state = "still running" if service.process.poll() is None else f"exited with {service.process.returncode}"
            return f"--- {service.name} ({state}), {service.log_path}:\n{service.log_tail()}"

        return text

    def _wait(self, service: Service, check: Callable[[], bool], *, timeout: float, what: str) -> None:
        def alive_check() -> bool:
            if service.process.poll() is not None:
                raise StackError(f"{service.name} exited with {service.process.returncode}.\n{self._fail_text(service)()}")
            return check()

        deadline = time.monotonic() + timeout
        while True:
            try:
                if alive_check():
                    return
            except StackError:
                raise
            except Exception:
                pass
            if time.monotonic() > deadline:
                raise StackError(f"Timed out after {timeout:.0f}s waiting for {what}.\n{self._fail_text(service)()}")
            time.sleep(0.1)

    def _start_redis(self) -> None:
        redis_server = shutil.which("redis-server")
        if not redis_server:
            raise StackError("redis-server is missing: run `bash scripts/test_deps.sh` (make test does).")
        port = free_port()
        redis_dir = self.tmp / "redis"
        redis_dir.mkdir()
        service = self._spawn("redis", [redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                        "--appendonly", "no", "--dir", str(redis_dir), "--daemonize", "no"])

        def ping() -> bool:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")

        self._wait(service, ping, timeout=20, what="redis-server")
        self.redis_url = f"redis://127.0.0.1:{port}/0"

    def _start_postgres(self) -> None:
        bin_dir = postgres_bin_dir()
        port = free_port()
        as_root = os.geteuid() == 0
        # PostgreSQL refuses to run as root: then the data directory belongs to the `postgres` user.
        pg_root = Path(tempfile.mkdtemp(prefix=f"explainer-{self.name}-pg-"))
        self._pg_root = pg_root
        data, sock_dir = pg_root / "data", pg_root / "run"
        sock_dir.mkdir()
        pg_root.chmod(0o755)
        if as_root:
            shutil.chown(pg_root, "postgres", "postgres")
            shutil.chown(sock_dir, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
        initdb = subprocess.run([*prefix, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                                 "--encoding=UTF8", "--no-sync"], capture_output=True, text=True, timeout=120)
        (self.log_dir / "initdb.log").write_text(initdb.stdout + initdb.stderr)
        if initdb.returncode != 0:
            raise StackError(f"initdb failed ({initdb.returncode}):\n{initdb.stderr[-3000:]}")
        service = self._spawn("postgres", [*prefix, str(bin_dir / "postgres"), "-D", str(data), "-p", str(port),
                                           "-h", "127.0.0.1", "-k", str(sock_dir), "-c", "fsync=off",
                                           "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
                              stop_signal=signal.SIGINT)  # SIGINT = fast shutdown

        def ready() -> bool:
            return subprocess.run([str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres"],
                                  capture_output=True, timeout=5).returncode == 0

        self._wait(service, ready, timeout=60, what="PostgreSQL")
        created = subprocess.run([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                                  "explainer"], capture_output=True, text=True, timeout=30)
        if created.returncode != 0:
            raise StackError(f"createdb failed: {created.stderr}")
        self.database_url = f"postgres://postgres@127.0.0.1:{port}/explainer"

    def _app_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CELERY_", "EXPLAINER_"))}
        env.update({
            "DJANGO_SETTINGS_MODULE": self.settings_module,
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": self.database_url,
            "CELERY_BROKER_URL": self.redis_url,
            "EXPLAINER_VAR_DIR": str(self.tmp / "var"),
            "MEDIA_ROOT": str(self.tmp / "media"),
            "STATIC_ROOT": str(self.tmp / "static"),
            "DJANGO_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "OMP_NUM_THREADS": "1",
            "MPLBACKEND": "Agg",
            # Journeys check that trust scores appear, not how steady they are: one rerun keeps CI quick.
            "EXPLAINER_TRUST_STABILITY_RUNS": "1",
            # Every journey signs its people up from 127.0.0.1: more than one address's hourly allowance.
            "EXPLAINER_SIGNUP_PER_HOUR": "1000",
        })
        env.update(self.extra_env)
        return env

    def _start_web(self) -> Callable[[], None]:
        port = free_port()
        argv = command_adapt(self.commands["web"], {"--bind": f"127.0.0.1:{port}", "--workers": str(self.web_workers)})
        service = self._spawn("web", executable(argv), env=self.env)
        self.base_url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            with urllib.request.urlopen(f"{self.base_url}/accounts/login/", timeout=5) as response:
                return response.status == 200

        return lambda: self._wait(service, up, timeout=120, what="gunicorn")

    def _start_worker(self, spec: WorkerSpec) -> Callable[[], None]:
        argv = command_adapt(self.commands[spec.service], {"--concurrency": str(spec.concurrency)})
        if spec.queues:
            argv = command_adapt(argv, {"-Q": spec.queues})
        service = self._spawn(spec.service, executable(argv), env=self.env)
        return lambda: self._wait(service, lambda: " ready." in service.log_text(), timeout=120,
                                  what=f"Celery worker {spec.service}")

    # ------------------------------------------------------------------ helpers for tests

    def service(self, name: str) -> Service:
        return next(s for s in self.services if s.name == name)

    def worker_node(self, service_name: str) -> str:
        """The Celery node name (``cpu-1a2b3c@host``) the worker announced in its log."""
        for line in self.service(service_name).log_text().splitlines():
            if line.rstrip().endswith(" ready."):
                return line.rstrip().rsplit(" ready.", 1)[0].split()[-1]
        raise StackError(f"{service_name} did not announce itself")

    def manage(self, *args: str, timeout: float = 300) -> str:
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=self.env,
                                capture_output=True, text=True, timeout=timeout)
        with open(self.log_dir / "manage.log", "a") as log:
            log.write(f"$ manage.py {shlex.join(args)}\n{result.stdout}{result.stderr}\n")
        if result.returncode != 0:
            raise StackError(f"manage.py {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-4000:]}")
        return result.stdout

    def user_create(self, username: str, password: str) -> str:
        """A user with an API token; returns the token."""
        code = (
            "from django.contrib.auth import get_user_model; from rest_framework.authtoken.models import Token; "
            f"u = get_user_model().objects.create_user({username!r}, password={password!r}); "
            "print('TOKEN=' + Token.objects.create(user=u).key)"
        )
        out = self.manage("shell", "--no-imports", "-c", code)
        return next(line for line in out.splitlines() if line.startswith("TOKEN=")).split("=", 1)[1]

    def logs_tail(self, lines: int = 40) -> str:
        return "\n\n".join(f"--- {s.name} ({s.log_path}):\n{s.log_tail(lines)}" for s in self.services)

    def api(self, token: str) -> ApiClient:
        return ApiClient(self.base_url, token)


def postgres_bin_dir() -> Path:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if candidates:
        return candidates[-1].parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise StackError("PostgreSQL is missing: run `bash scripts/test_deps.sh` (make test does).")


class ApiError(AssertionError):
    def __init__(self, status: int, body: bytes):
        super().__init__(f"HTTP {status}: {body[:2000].decode(errors='replace')}")
        self.status, self.body = status, body


class ApiClient:
    """A few lines of urllib: token auth, JSON in and out, multipart upload, raw bytes."""

    def __init__(self, base_url: str, token: str):
        self.base_url, self.token = base_url, token

    def request(self, method: str, path: str, *, body: bytes | None = None, content_type: str | None = None,
                timeout: float = 60) -> tuple[int, dict[str, str], bytes]:
        headers = {"Authorization": f"Token {self.token}", "Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(self.base_url + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def json(self, method: str, path: str, payload: dict | None = None, *, expect: int = 200):
        body = json.dumps(payload).encode() if payload is not None else None
        status, _, data = self.request(method, path, body=body, content_type="application/json" if body else None)
        if status != expect:
            raise ApiError(status, data)
        return json.loads(data) if data else None

    def upload(self, path: str, file: Path, *, name: str = "", expect: int = 201) -> dict:
        boundary = uuid.uuid4().hex
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\n{name}\r\n'.encode(),
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{file.name}"\r\n'
            f"Content-Type: text/csv\r\n\r\n".encode() + file.read_bytes() + b"\r\n",
            f"--{boundary}--\r\n".encode(),
        ]
        status, _, data = self.request("POST", path, body=b"".join(parts),
                                       content_type=f"multipart/form-data; boundary={boundary}")
        if status != expect:
            raise ApiError(status, data)
        return json.loads(data)

    def get_bytes(self, path: str, *, expect: int = 200) -> tuple[dict[str, str], bytes]:
        status, headers, data = self.request("GET", path)
        if status != expect:
            raise ApiError(status, data)
        return headers, data

    def job_wait(self, job_id: int, *, timeout: float = 240, until=("succeeded", "failed", "cancelled")) -> dict:
        """Poll the job until it reaches one of ``until``; returns the last payload seen."""
        deadline = time.monotonic() + timeout
        job: dict = {}
        while time.monotonic() < deadline:
            job = self.json("GET", f"/api/jobs/{job_id}/")
            if job["status"] in until:
                return job
            time.sleep(0.5)
        raise AssertionError(f"job {job_id} still {job.get('status')} ({job.get('stage')}) after {timeout:.0f}s")
