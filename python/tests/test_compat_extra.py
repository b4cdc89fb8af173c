"""healthtable.compat beyond the reference's own tests: listeners, the
private table's lifetime, and the shared-table (prefork) mode."""

from __future__ import annotations

import gc
import os
import socket

import pytest

import healthtable
from healthtable.compat import ProviderHealthCache


def test_listeners_see_transitions_only() -> None:
    seen = []
    c = ProviderHealthCache(failure_threshold=2)
    c.add_listener(lambda p, healthy, state: seen.append((p, healthy, state.consecutive_failures)))
    c.mark_unhealthy("groq", "x")
    c.mark_unhealthy("groq", "x")
    c.mark_unhealthy("groq", "x")  # re-arm: no transition
    c.mark_healthy("groq")
    c.mark_healthy("groq")
    assert seen == [("groq", False, 2), ("groq", True, 0)]
    c.close()


def test_private_table_is_a_real_table_and_is_removed() -> None:
    c = ProviderHealthCache(failure_threshold=1)
    c.mark_unhealthy("groq", "boom")
    name = c.table_name
    assert healthtable.Table.open(name).is_healthy("groq") is False
    del c
    gc.collect()
    with pytest.raises(healthtable.NoSuchTable):
        healthtable.Table.open(name)


def test_shared_table_mode_reads_the_table_and_reports(writer: healthtable.Writer) -> None:
    name = writer.table.name
    writer.mark_unhealthy("groq", "x")
    writer.mark_unhealthy("groq", "x")
    path = os.path.join(writer.table.info().home, "control")
    prober = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    prober.bind(path)
    try:
        prober.settimeout(5)
        c = ProviderHealthCache(table=name)
        assert (c.failure_threshold, c.unhealthy_backoff_sec) == (2, 60.0)
        assert c.is_healthy("groq") is False and c.is_healthy("ollama") is True
        assert c.get_state("groq").consecutive_failures == 2
        c.mark_unhealthy("ollama", "http 503")
        assert prober.recv(1024) == b"record ollama failure http 503"
        c.mark_healthy("ollama")
        assert prober.recv(1024) == b"record ollama success"
        with pytest.raises(ValueError, match="clock"):
            ProviderHealthCache(table=name, clock=lambda: 0.0)
    finally:
        prober.close()
        os.unlink(path)
