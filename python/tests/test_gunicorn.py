"""The prefork test: gunicorn (Debian's) with 4 sync workers serving
python/examples/gateway_app.py. A trip, an override and a recreate made
with healthctl are seen by every worker on its first request after the
change, with no table-watching code in the app."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Dict, Iterator, Set

import pytest

from conftest import run

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples")
WORKERS = 4
CHAIN = "groq,openai,ollama"


def get(sock_path: str, path: str) -> dict:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.connect(sock_path)
        s.sendall(("GET %s HTTP/1.0\r\nHost: test\r\n\r\n" % path).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200") or head.startswith(b"HTTP/1.1 200"), head
    return json.loads(body)


class Gunicorn:
    def __init__(self, table: str, sock_path: str) -> None:
        self.sock_path = sock_path
        env = dict(os.environ, HEALTHTABLE_TABLE=table, HEALTHTABLE_CHAIN=CHAIN)
        self.proc = subprocess.Popen(
            [sys.executable, shutil.which("gunicorn") or "gunicorn", "--workers", str(WORKERS),
             "--worker-class", "sync", "--bind", "unix:" + sock_path, "--chdir", EXAMPLES,
             "--log-level", "warning", "gateway_app:app"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.workers: Set[int] = set()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("gunicorn exited: %s" % self.proc.stdout.read())
            try:
                get(self.sock_path, "/route")
                return
            except (OSError, AssertionError):
                time.sleep(0.05)
        raise AssertionError("gunicorn did not answer within 30 s")

    def every_worker(self) -> Dict[int, dict]:
        """One answer from each of the WORKERS workers: requests go on until
        every worker pid has answered, and each answer counts (the first
        from a pid is the one kept; all are returned for the caller to
        check through `answers`)."""
        first: Dict[int, dict] = {}
        self.answers = []
        deadline = time.monotonic() + 60
        while len(first) < WORKERS:
            assert time.monotonic() < deadline, "only workers %s answered" % sorted(first)
            a = get(self.sock_path, "/route")
            self.answers.append(a)
            first.setdefault(a["pid"], a)
        self.workers |= set(first)
        return first

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for pid in self.workers:  # gone with their master, or stopped here
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def gateway(healthctl: str, name: str, tmp_path) -> Iterator[Gunicorn]:
    if shutil.which("gunicorn") is None:
        pytest.skip("gunicorn is not installed (Debian's gunicorn package)")
    run([healthctl, "create", name])
    g = Gunicorn(name, str(tmp_path / "gunicorn.sock"))
    try:
        g.wait_ready()
        yield g
    finally:
        g.stop()


def test_every_worker_sees_trip_override_and_recreate(gateway: Gunicorn, healthctl: str,
                                                      name: str) -> None:
    before = gateway.every_worker()
    assert len(before) == WORKERS
    assert all(a["provider"] == "groq" for a in gateway.answers)

    for _ in range(2):
        run([healthctl, "record", name, "groq", "failure", "--reason", "http 503"])
    gateway.every_worker()
    assert all(a["provider"] == "openai" and a["healthy"]["groq"] is False
               for a in gateway.answers), gateway.answers

    run([healthctl, "set", name, "openai", "down", "--create"])
    gateway.every_worker()
    assert all(a["provider"] == "ollama" and a["healthy"]["openai"] is False
               for a in gateway.answers), gateway.answers

    run([healthctl, "create", name, "--force"])  # a new, empty table at the name
    after = gateway.every_worker()
    assert all(a["provider"] == "groq" and all(a["healthy"].values())
               for a in gateway.answers), gateway.answers
    # The same processes answered: the workers followed, none was restarted.
    assert set(after) == set(before)
