"""The top README's ```python blocks, run as written against a table of
the test's own (the name "gateway" becomes it, as tests/docs does for the
C++ blocks)."""

from __future__ import annotations

import os
import re

import healthtable

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")


def blocks() -> list:
    with open(README, encoding="utf-8") as f:
        return re.findall(r"^```python\n(.*?)^```", f.read(), flags=re.M | re.S)


def test_readme_python_blocks_run(writer: healthtable.Writer, name: str, capsys) -> None:
    found = blocks()
    assert found, "README.md has no ```python block"
    writer.mark_unhealthy("groq", "http 503")
    writer.mark_unhealthy("groq", "http 503")
    for code in found:
        exec(compile(code.replace('"gateway"', repr(name)), "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "route to groq" not in out  # groq is tripped
    assert "pick: openai available" in out
    assert "False 2 http 503" in out
