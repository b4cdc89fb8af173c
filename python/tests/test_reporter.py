"""Reporter: one non-blocking datagram per outcome to the table's control
socket. A socket bound here stands in for the prober."""

from __future__ import annotations

import os
import socket
from typing import Iterator

import pytest

import healthtable


@pytest.fixture
def prober(writer: healthtable.Writer) -> Iterator[socket.socket]:
    path = os.path.join(writer.table.info().home, "control")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(5)
    yield s
    s.close()
    os.unlink(path)


def test_failure_and_success_lines(writer: healthtable.Writer, prober: socket.socket) -> None:
    r = healthtable.Reporter(writer.table.name)
    assert r.failure("groq", "http 429", cls="rate_limited", retry_after=30) is True
    assert prober.recv(1024) == b"record groq failure class=rate_limited retry=30s http 429"
    assert r.failure("groq", "http 503") is True
    assert prober.recv(1024) == b"record groq failure http 503"
    assert r.success("groq") is True
    assert prober.recv(1024) == b"record groq success"


def test_never_blocks_when_the_prober_does_not_read(writer: healthtable.Writer,
                                                    prober: socket.socket) -> None:
    r = healthtable.Reporter(writer.table.name)
    sent = [r.failure("groq", "x" * 100) for _ in range(5000)]
    # The queue fills and the call answers False instead of waiting.
    assert sent[0] is True and sent[-1] is False


def test_no_prober_is_false_not_an_exception(writer: healthtable.Writer) -> None:
    r = healthtable.Reporter(writer.table.name)
    assert r.failure("groq", "http 503") is False
    assert r.success("groq") is False


def test_bad_input(writer: healthtable.Writer) -> None:
    with pytest.raises(healthtable.InvalidName):
        healthtable.Reporter("no/slashes")
    r = healthtable.Reporter(writer.table.name)
    with pytest.raises(healthtable.InvalidArgument, match="not a failure class"):
        r.failure("groq", "x", cls="bogus")
    with pytest.raises(healthtable.InvalidArgument, match="retry_after"):
        r.failure("groq", "x", retry_after=float("nan"))
