"""Table reads: is_healthy by handle and by name, get_state, snapshot."""

from __future__ import annotations

import pytest

import healthtable


def test_unknown_provider_is_healthy_and_has_no_state(writer: healthtable.Writer) -> None:
    table = healthtable.Table.open(writer.table.name)
    h = table.handle("ollama")
    assert table.is_healthy(h) is True
    assert h.is_healthy() is True
    assert table.is_healthy("ollama") is True
    assert table.get_state("ollama") is None
    assert table.get_state(h) is None


def test_trip_is_seen_by_handle_and_name(writer: healthtable.Writer) -> None:
    table = healthtable.Table.open(writer.table.name)
    groq = table.handle("groq")
    assert writer.mark_unhealthy("groq", "http 503") == "none"
    assert table.is_healthy(groq) is True
    assert writer.mark_unhealthy("groq", "http 503") == "tripped"
    assert table.is_healthy(groq) is False
    assert groq.is_healthy() is False
    assert table.is_healthy("groq") is False
    assert writer.mark_healthy("groq") == "recovered"
    assert table.is_healthy(groq) is True


def test_get_state_has_the_reference_fields(writer: healthtable.Writer) -> None:
    t0 = 1_700_000_000 * 10**9
    writer.mark_unhealthy("groq", "first", unix_ns=t0, mono_ns=10**12)
    writer.mark_unhealthy("groq", "http 503", unix_ns=t0 + 10**9, mono_ns=10**12 + 10**9)
    s = writer.table.get_state("groq")
    assert s is not None
    assert (s.name, s.registered, s.healthy) == ("groq", True, False)
    assert s.consecutive_failures == 2
    assert s.last_error == "http 503"
    assert s.last_check == 1_700_000_001.0
    assert s.unhealthy_until == 1_700_000_061.0
    assert (s.override, s.last_class, s.last_source) == ("auto", "other", "probe")
    assert s.failures == 2 and s.successes == 0 and s.trips == 1
    assert s.class_failures["other"] == 2 and s.class_failures["timeout"] == 0
    assert repr(s).startswith("ProviderState(name='groq', healthy=False, available=")
    assert "last_error='http 503', unhealthy_until=1700000061.0" in repr(s)
    writer.mark_healthy("groq")
    s = writer.table.get_state("groq")
    assert (s.healthy, s.consecutive_failures, s.last_error, s.unhealthy_until) == (
        True, 0, None, 0.0)


def test_window_passes_at_an_explicit_time(writer: healthtable.Writer) -> None:
    mono = 5 * 10**12
    writer.mark_unhealthy("groq", "x", mono_ns=mono)
    writer.mark_unhealthy("groq", "x", mono_ns=mono)
    t = writer.table
    assert t.is_healthy_at("groq", mono + 59 * 10**9) is False
    assert t.is_healthy_at(t.handle("groq"), mono + 61 * 10**9) is True


def test_forced_down_override(writer: healthtable.Writer) -> None:
    h = writer.table.handle("google")
    writer.set_override("google", "down", reason="maintenance")
    assert writer.table.is_healthy(h) is False
    s = writer.table.get_state(h)
    assert (s.override, s.override_reason, s.available) == ("down", "maintenance", False)
    writer.set_override("google", "auto")
    assert writer.table.is_healthy(h) is True


def test_snapshot_keeps_real_states_and_adds_placeholders(writer: healthtable.Writer) -> None:
    writer.mark_unhealthy("ollama", "real-boom")
    snap = writer.table.snapshot(expected=["ollama", "groq"])
    assert set(snap) == {"ollama", "groq"}
    assert snap["ollama"].registered and snap["ollama"].consecutive_failures == 1
    assert not snap["groq"].registered and snap["groq"].consecutive_failures == 0
    assert snap["groq"].healthy and snap["groq"].available
    assert set(writer.table.snapshot()) == {"ollama"}


def test_handle_follows_a_recreated_table(name: str) -> None:
    with healthtable.Writer.create(name):
        table = healthtable.Table.open(name)
        groq = table.handle("groq")
        assert table.is_healthy(groq)
    healthtable.Writer.destroy(name, force=True)
    with healthtable.Writer.create(name, failure_threshold=1) as w2:
        w2.mark_unhealthy("groq", "down in the new table")
        # The old view's handle binds to the new table by itself.
        assert table.is_healthy(groq) is False
        assert table.get_state(groq).last_error == "down in the new table"


def test_handle_follows_grow(writer: healthtable.Writer) -> None:
    table = healthtable.Table.open(writer.table.name)
    groq = table.handle("groq")
    writer.mark_unhealthy("groq", "x")
    writer.grow(128)
    writer.mark_unhealthy("groq", "x")
    assert table.is_healthy(groq) is False
    assert table.info().capacity == 128


def test_bad_arguments_raise_one_clear_error(writer: healthtable.Writer) -> None:
    t = writer.table
    with pytest.raises(TypeError, match="Handle or a provider name"):
        t.is_healthy(3)  # type: ignore[arg-type]
    with pytest.raises(healthtable.InvalidName):
        t.handle("no spaces allowed")
    other = healthtable.Table.open(t.name)
    with pytest.raises(ValueError, match="another Table"):
        other.is_healthy(t.handle("groq"))
    with pytest.raises(TypeError):
        healthtable.Table()  # type: ignore[call-arg]
