"""The .pyi stubs cover what the extension has, and the docstrings exist."""

from __future__ import annotations

import ast
import os

import healthtable
from healthtable import _healthtable


def stub_classes() -> dict:
    path = os.path.join(os.path.dirname(healthtable.__file__), "_healthtable.pyi")
    with open(path) as f:
        tree = ast.parse(f.read())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            out[node.name] = {n.name if isinstance(n, ast.FunctionDef) else n.target.id
                              for n in node.body
                              if isinstance(n, (ast.FunctionDef, ast.AnnAssign))}
    return out


def test_every_public_name_has_a_stub() -> None:
    stubs = stub_classes()
    for cls_name in ("Table", "Handle", "ProviderState", "TableInfo", "Pick", "Reporter", "Writer"):
        cls = getattr(_healthtable, cls_name)
        public = {n for n in dir(cls) if not n.startswith("_")}
        assert public <= stubs[cls_name], (cls_name, public - stubs[cls_name])


def test_public_methods_have_docstrings() -> None:
    for cls in (healthtable.Table, healthtable.Reporter, healthtable.Writer):
        for n in dir(cls):
            if not n.startswith("_") and callable(getattr(cls, n)):
                assert getattr(cls, n).__doc__, "%s.%s has no docstring" % (cls.__name__, n)
