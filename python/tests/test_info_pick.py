"""info(): writer liveness and data age; pick(chain)."""

from __future__ import annotations

import time

import pytest

import healthtable


def test_info_reports_writer_and_data_age(name: str) -> None:
    table = None
    with healthtable.Writer.create(name, capacity=16) as w:
        table = healthtable.Table.open(name)
        info = table.info()
        assert (info.segment, info.capacity, info.used, info.state) == (name, 16, 0, "live")
        assert info.failure_threshold == 2 and info.backoff == 60.0
        assert info.writer_attached is True
        assert info.heartbeat_interval is None
        w.set_heartbeat_interval(1.0)
        w.heartbeat()
        info = table.info()
        assert info.heartbeat_interval == 1.0
        assert info.data_age is not None and info.data_age >= 0.0
        assert info.writer_stale is False
    info = table.info()
    assert info.writer_attached is False
    assert info.writer_stale is True


def test_pick_by_handles(writer: healthtable.Writer) -> None:
    t = writer.table
    chain = [t.handle("groq"), t.handle("openai"), t.handle("ollama")]
    p = t.pick(chain)
    assert (p.index, p.provider, p.available, p.reason) == (0, "groq", True, "available")
    writer.set_override("groq", "down")
    p = t.pick(chain)
    assert (p.index, p.provider, p.reason) == (1, "openai", "available")


def test_pick_when_none_is_available(writer: healthtable.Writer) -> None:
    t = writer.table
    for p in ("groq", "openai"):
        writer.mark_unhealthy(p, "x")
        writer.mark_unhealthy(p, "x")
    panic = t.pick(["groq", "openai"])
    assert panic.panic and panic.index in (0, 1) and panic.reason == "panic"
    none = t.pick([t.handle("groq"), t.handle("openai")], policy="none")
    assert none.index is None and none.provider is None and not none
    assert none.reason == "none"
    assert none.retry_at is not None and none.retry_at > time.time() + 30
    assert t.pick([]).reason == "empty"
    # The names may be made on access: the pick holds them while it reads.
    assert t.pick(tuple("%s" % n for n in ("groq", "openai", "ollama"))).provider == "ollama"


def test_pick_refuses_bad_chains(writer: healthtable.Writer) -> None:
    t = writer.table
    with pytest.raises(TypeError, match="not a mix"):
        t.pick([t.handle("groq"), "openai"])
    with pytest.raises(healthtable.InvalidArgument, match="policy"):
        t.pick(["groq"], policy="sometimes")
