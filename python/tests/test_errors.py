"""Typed exceptions: healthtable::Errc to healthtable.Error's subclasses."""

from __future__ import annotations

import pytest

import healthtable


def test_missing_table(name: str) -> None:
    with pytest.raises(healthtable.NoSuchTable) as e:
        healthtable.Table.open(name)
    assert e.value.code == healthtable.Errc.no_such_segment == 3
    assert isinstance(e.value, healthtable.Error) and isinstance(e.value, FileNotFoundError)
    assert "healthctl create" in str(e.value)


def test_invalid_name_is_a_value_error() -> None:
    with pytest.raises(ValueError) as e:
        healthtable.Table.open("../etc")
    assert isinstance(e.value, healthtable.InvalidName)
    assert e.value.code == healthtable.Errc.invalid_name


def test_writer_busy_then_already_exists(writer: healthtable.Writer, name: str) -> None:
    with pytest.raises(healthtable.WriterBusy) as e:
        healthtable.Writer.open(name)
    assert e.value.code == 11
    writer.close()
    with pytest.raises(healthtable.AlreadyExists) as e2:
        healthtable.Writer.create(name)
    assert isinstance(e2.value, FileExistsError)


def test_unknown_provider(writer: healthtable.Writer) -> None:
    with pytest.raises(healthtable.UnknownProvider):
        writer.forget("never-registered")


def test_every_code_has_its_class() -> None:
    from healthtable import _errors

    assert set(_errors.BY_CODE) == {int(c) for c in healthtable.Errc}
    for code, cls in _errors.BY_CODE.items():
        assert issubclass(cls, healthtable.Error) and cls.code == code
