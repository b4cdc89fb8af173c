"""The package beside the C++ tools: tables healthctl writes, read here;
and python3 -m healthtable dump."""

from __future__ import annotations

import json
import os
import sys

import healthtable

from conftest import run


def test_reads_what_healthctl_writes(healthctl: str, name: str) -> None:
    run([healthctl, "create", name])
    table = healthtable.Table.open(name)
    groq = table.handle("groq")
    for _ in range(2):
        run([healthctl, "record", name, "groq", "failure", "--reason", "http 503"])
    assert table.is_healthy(groq) is False
    assert table.get_state("groq").last_error == "http 503"
    run([healthctl, "set", name, "google", "down", "--create"])
    assert table.is_healthy("google") is False
    assert table.pick(["google", "groq", "ollama"]).provider == "ollama"


def test_handle_follows_a_recreate_by_healthctl(healthctl: str, name: str) -> None:
    run([healthctl, "create", name])
    table = healthtable.Table.open(name)
    groq = table.handle("groq")
    run([healthctl, "set", name, "groq", "down", "--create"])
    assert table.is_healthy(groq) is False
    run([healthctl, "create", name, "--force"])
    assert table.is_healthy(groq) is True


def module(*args: str) -> "object":
    env = dict(os.environ)
    return run([sys.executable, "-m", "healthtable", *args], check=False)


def test_dump(writer: healthtable.Writer, name: str) -> None:
    writer.mark_unhealthy("groq", "http 503")
    writer.mark_unhealthy("groq", "http 503")
    writer.mark_healthy("ollama")
    out = module("dump", name)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("table '%s': 2 of 64 slots used" % name)
    assert any(l.split()[:3] == ["groq", "no", "no"] for l in lines)
    assert any(l.split()[:3] == ["ollama", "yes", "yes"] for l in lines)
    j = json.loads(module("dump", name, "--json").stdout)
    assert j["providers"]["groq"]["consecutive_failures"] == 2
    assert j["providers"]["groq"]["last_error"] == "http 503"
    assert j["writer_attached"] is True


def test_dump_of_a_missing_table(name: str) -> None:
    out = module("dump", name)
    assert out.returncode == 3
    assert out.stderr.startswith("python3 -m healthtable: no health table")
