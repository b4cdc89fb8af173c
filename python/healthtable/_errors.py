"""healthtable's exceptions: one per code of the C++ library's healthtable::Errc.

Every exception the package raises for a table is a healthtable.Error; its
``code`` is the Errc value (also healthctl's exit code, docs/cli.md). Where a
builtin says the same thing, the class derives from it too, so
``except ValueError`` still catches an invalid name.
"""

from __future__ import annotations

import enum
from typing import Dict, Type


class Errc(enum.IntEnum):
    """healthtable::Errc; the values are stable."""

    no_such_segment = 3
    not_a_table = 4
    incompatible_layout = 5
    not_ready = 6
    permission_denied = 7
    table_full = 8
    invalid_name = 9
    already_exists = 10
    writer_busy = 11
    corrupt = 12
    no_space = 13
    unknown_provider = 14
    invalid_argument = 15
    system_error = 16
    wrong_owner = 17


class Error(Exception):
    """Base of every healthtable error; ``code`` says which (an Errc)."""

    code: Errc = Errc.system_error


class NoSuchTable(Error, FileNotFoundError):
    """No table of that name: create it with ``healthctl create NAME``."""

    code = Errc.no_such_segment


class NotATable(Error):
    """Something is at the name, but not a health table."""

    code = Errc.not_a_table


class IncompatibleLayout(Error):
    """A health table of another layout version or build."""

    code = Errc.incompatible_layout


class NotReady(Error):
    """The table is still being created (or was abandoned mid-creation)."""

    code = Errc.not_ready


class PermissionDenied(Error, PermissionError):
    """The OS refused the open or the operation."""

    code = Errc.permission_denied


class TableFull(Error):
    """Every slot is registered: ``healthctl grow``."""

    code = Errc.table_full


class InvalidName(Error, ValueError):
    """A table or provider name that is not allowed."""

    code = Errc.invalid_name


class AlreadyExists(Error, FileExistsError):
    """A table of that name exists."""

    code = Errc.already_exists


class WriterBusy(Error):
    """Another process holds the writer lock, or no prober is listening."""

    code = Errc.writer_busy


class Corrupt(Error):
    """Sizes or offsets in the table's header do not add up."""

    code = Errc.corrupt


class NoSpace(Error, OSError):
    """/dev/shm is full."""

    code = Errc.no_space


class UnknownProvider(Error, LookupError):
    """A write names a provider the table does not have."""

    code = Errc.unknown_provider


class InvalidArgument(Error, ValueError):
    """A bad value: a failure class, a duration, a policy field."""

    code = Errc.invalid_argument


class SystemCallError(Error, OSError):
    """Any other failed system call."""

    code = Errc.system_error


class WrongOwner(Error, PermissionError):
    """The table or its home belongs to another uid than expected."""

    code = Errc.wrong_owner


# The extension raises by code (python/src/errors.cpp).
BY_CODE: Dict[int, Type[Error]] = {
    int(cls.code): cls
    for cls in (NoSuchTable, NotATable, IncompatibleLayout, NotReady, PermissionDenied,
                TableFull, InvalidName, AlreadyExists, WriterBusy, Corrupt, NoSpace,
                UnknownProvider, InvalidArgument, SystemCallError, WrongOwner)
}
