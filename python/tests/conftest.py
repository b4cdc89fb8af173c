"""Shared fixtures: tables with names no other test (or test run) uses,
healthtable-test-py-PID-N as the C++ helpers name theirs, removed even when
the test fails; and healthctl from this build when CTest gives it."""

from __future__ import annotations

import gc
import itertools
import os
import subprocess
from typing import Iterator, List

import pytest

import healthtable

_counter = itertools.count()


def unique_name() -> str:
    return "healthtable-test-py-%d-%d" % (os.getpid(), next(_counter))


def remove(name: str) -> None:
    try:
        healthtable.Writer.destroy(name, force=True)
    except healthtable.NoSuchTable:
        pass


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The net under the fixtures: any table of this run still there (a
    failed test's traceback can keep its Writer alive past the fixture's
    teardown, and compat's private tables go with their cache) is removed."""
    gc.collect()
    run_dir = os.environ.get("HEALTHTABLE_RUN_DIR", "/run/healthtable")
    mine = ("healthtable-test-py-%d-" % os.getpid(), "healthtable-compat-%d-" % os.getpid())
    for n in os.listdir(run_dir) if os.path.isdir(run_dir) else []:
        if n.startswith(mine):
            try:
                healthtable.Writer.destroy(n, force=True)
            except healthtable.Error as e:
                print("conftest: could not remove table %s: %s" % (n, e))


@pytest.fixture
def name() -> Iterator[str]:
    """A table name, nothing at it yet; whatever the test makes there is removed."""
    n = unique_name()
    yield n
    remove(n)


@pytest.fixture
def writer(name: str) -> Iterator[healthtable.Writer]:
    """A fresh table (threshold 2, backoff 60 s), held by this process's Writer."""
    w = healthtable.Writer.create(name)
    yield w
    w.close()


@pytest.fixture
def healthctl() -> str:
    path = os.environ.get("HEALTHCTL")
    if not path:
        pytest.skip("HEALTHCTL is not set (ctest sets it to this build's healthctl)")
    return path


def run(cmd: List[str], check: bool = True) -> subprocess.CompletedProcess:
    """Runs a command to completion (so nothing outlives the test)."""
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=check)
