"""healthtable: the provider health table in shared memory, for Python.

    import healthtable

    table = healthtable.Table.open("gateway")      # read-only mapping
    groq = table.handle("groq")                    # once, at start-up
    if table.is_healthy(groq): ...                 # per request: one load
    table.pick([groq, table.handle("ollama")])     # the first available
    healthtable.Reporter("gateway").failure("groq", "http 503", cls="server")

Every read is the C++ library's own (one implementation of the protocol);
see python/README.md. ``healthtable.compat`` is a drop-in for the reference
ProviderHealthCache.
"""

from ._errors import (
    AlreadyExists,
    Corrupt,
    Errc,
    Error,
    IncompatibleLayout,
    InvalidArgument,
    InvalidName,
    NoSpace,
    NoSuchTable,
    NotATable,
    NotReady,
    PermissionDenied,
    SystemCallError,
    TableFull,
    UnknownProvider,
    WriterBusy,
    WrongOwner,
)
from ._healthtable import Handle, Pick, ProviderState, Reporter, Table, TableInfo, Writer

__version__ = "0.1.0"

FAILURE_CLASSES = ("timeout", "connect", "server", "rate_limited", "auth", "client", "other")

__all__ = [
    "AlreadyExists", "Corrupt", "Errc", "Error", "FAILURE_CLASSES", "Handle",
    "IncompatibleLayout", "InvalidArgument", "InvalidName", "NoSpace", "NoSuchTable",
    "NotATable", "NotReady", "PermissionDenied", "Pick", "ProviderState", "Reporter",
    "SystemCallError", "Table", "TableFull", "TableInfo", "UnknownProvider", "Writer",
    "WriterBusy", "WrongOwner",
]
