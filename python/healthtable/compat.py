"""A drop-in for the reference module's ProviderHealthCache, backed by a
real health table.

    from healthtable.compat import ProviderHealthCache

    cache = ProviderHealthCache()                    # standalone: a private table
    cache = ProviderHealthCache(table="gateway")     # prefork: the shared table

Standalone, the cache creates a private table of its own (named
healthtable-compat-PID-N, removed by close() or when the cache is
collected) and writes it through a Writer, with the reference's
constructor: failure_threshold, unhealthy_backoff_sec and an injectable
clock (a callable returning seconds, used for both the deadlines and the
reported times, as the reference did); like `healthctl create`, that
needs root or HEALTHTABLE_RUN_DIR set to a directory the user owns. Transitions are logged (logger
"healthtable.compat": "recovered" at INFO, a trip at WARNING) and given to
listeners added with add_listener().

With table="NAME", reads come from the shared table that the prober keeps,
and mark_healthy() / mark_unhealthy() become reports to that prober
(Reporter: one non-blocking datagram each). The breaker then runs in the
prober, whose policy is the table's: failure_threshold and
unhealthy_backoff_sec are read from the table, and no clock can be
injected. Listeners are not called in this mode: transitions happen in
the prober (`healthctl events NAME` lists them).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import weakref
from typing import Callable, Dict, Iterable, List, Optional

from . import _healthtable as _ht

DEFAULT_FAILURE_THRESHOLD = 2
DEFAULT_UNHEALTHY_BACKOFF_SEC = 60.0

log = logging.getLogger("healthtable.compat")

Listener = Callable[[str, bool, "ProviderState"], None]


@dataclasses.dataclass
class ProviderState:
    """One provider's state, the reference module's fields (a copy)."""

    name: str
    healthy: bool = True
    consecutive_failures: int = 0
    last_check: float = 0.0
    last_error: Optional[str] = None
    unhealthy_until: float = 0.0


def _copy(s: _ht.ProviderState) -> ProviderState:
    return ProviderState(s.name, s.healthy, s.consecutive_failures, s.last_check, s.last_error,
                         s.unhealthy_until)


_counter = itertools.count()


class _PrivateTable:
    """The standalone cache's table, removed when the cache goes. The writer
    is released before the table is destroyed (destroy refuses a table whose
    writer lock is held)."""

    def __init__(self, threshold: int, backoff: float) -> None:
        self.name = "healthtable-compat-%d-%d" % (os.getpid(), next(_counter))
        self.writer: Optional[_ht.Writer] = _ht.Writer.create(
            self.name, failure_threshold=threshold, backoff=backoff, mode=0o600)
        # A view of its own, not Writer.table: that one keeps the writer (and
        # its lock) alive for as long as anyone holds it, and the lock must
        # go before the table can be destroyed.
        self.table = _ht.Table.open(self.name)
        self.pid = os.getpid()

    def close(self) -> None:
        if self.writer is None:
            return
        self.writer.close()
        self.writer = None
        # A forked child inherits the object, not the table: only its creator removes it.
        if os.getpid() == self.pid:
            try:
                _ht.Writer.destroy(self.name, force=True)
            except Exception:  # already gone: nothing to clean up
                pass


class ProviderHealthCache:
    """Per-provider circuit breakers: the reference module's API over a table."""

    def __init__(
        self,
        failure_threshold: int = DEFAULT_FAILURE_THRESHOLD,
        unhealthy_backoff_sec: float = DEFAULT_UNHEALTHY_BACKOFF_SEC,
        clock: Optional[Callable[[], float]] = None,
        *,
        table: Optional[str] = None,
    ) -> None:
        self._listeners: List[Listener] = []
        self._clock = clock
        if table is not None:
            if clock is not None:
                raise ValueError("clock: a shared table runs on the real clock; inject a clock "
                                 "only into a standalone cache")
            self._private = None
            self._table = _ht.Table.open(table)
            self._reporter: Optional[_ht.Reporter] = _ht.Reporter(table)
            info = self._table.info()
            self.failure_threshold = info.failure_threshold
            self.unhealthy_backoff_sec = info.backoff
            return
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1, got %r" % (failure_threshold,))
        if unhealthy_backoff_sec < 0:
            raise ValueError("unhealthy_backoff_sec (the backoff) must be >= 0, got %r"
                             % (unhealthy_backoff_sec,))
        self.failure_threshold = failure_threshold
        self.unhealthy_backoff_sec = unhealthy_backoff_sec
        self._reporter = None
        self._private = _PrivateTable(failure_threshold, float(unhealthy_backoff_sec))
        self._table = self._private.table
        weakref.finalize(self, self._private.close)

    @property
    def table_name(self) -> str:
        """The name of the table behind this cache (private or shared)."""
        return self._table.name

    def close(self) -> None:
        """Removes a standalone cache's private table (a shared one stays)."""
        if self._private is not None:
            self._private.close()

    def _now_ns(self) -> Optional[int]:
        return None if self._clock is None else round(self._clock() * 1e9)

    # Reads -----------------------------------------------------------------

    def is_healthy(self, provider: str) -> bool:
        """False while the provider's window lasts (or it is forced down);
        True for a provider never seen, and again once the window has passed."""
        if self._clock is None:
            return self._table.is_healthy(provider)
        return self._table.is_healthy_at(provider, round(self._clock() * 1e9))

    def get_state(self, provider: str) -> Optional[ProviderState]:
        """A copy of the provider's state, or None if it was never marked."""
        s = self._table.get_state(provider)
        return None if s is None else _copy(s)

    def snapshot(self, expected: Optional[Iterable[str]] = None) -> Dict[str, ProviderState]:
        """Copies of every state, plus zero states for expected names never seen."""
        states = self._table.snapshot(expected=None if expected is None else list(expected))
        return {name: _copy(s) for name, s in states.items()}

    # Writes ----------------------------------------------------------------

    def add_listener(self, listener: Listener) -> None:
        """Calls listener(provider, healthy, state) on each healthy<->unhealthy
        transition this cache writes (standalone mode)."""
        self._listeners.append(listener)

    def mark_healthy(self, provider: str) -> None:
        """A success: resets the breaker; logs "recovered" only on a real
        unhealthy -> healthy transition."""
        if self._reporter is not None:
            self._reporter.success(provider)
            return
        now = self._now_ns()
        t = self._private.writer.mark_healthy(provider, mono_ns=now, unix_ns=now)
        if t == "recovered":
            log.info("provider %s recovered", provider)
            self._announce(provider, True)

    def mark_unhealthy(self, provider: str, reason: str) -> None:
        """A failure: counts it, trips the breaker at the threshold, re-arms
        the window when already unhealthy."""
        if self._reporter is not None:
            self._reporter.failure(provider, reason)
            return
        now = self._now_ns()
        t = self._private.writer.mark_unhealthy(provider, reason, mono_ns=now, unix_ns=now)
        if t == "tripped":
            s = self._table.get_state(provider)
            log.warning("provider %s marked unhealthy after %d consecutive failures (%s); "
                        "backoff %gs", provider, s.consecutive_failures if s else 0, reason,
                        self.unhealthy_backoff_sec)
            self._announce(provider, False)

    def _announce(self, provider: str, healthy: bool) -> None:
        if not self._listeners:
            return
        state = self.get_state(provider) or ProviderState(provider)
        for listener in list(self._listeners):
            try:
                listener(provider, healthy, state)
            except Exception:  # one bad listener must not break the breaker
                log.exception("health listener %r failed", listener)


__all__ = ["DEFAULT_FAILURE_THRESHOLD", "DEFAULT_UNHEALTHY_BACKOFF_SEC", "ProviderHealthCache",
           "ProviderState"]
