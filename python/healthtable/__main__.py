"""python3 -m healthtable dump NAME [--json]: a table's providers, read
through the package (the same reader a gateway uses)."""

from __future__ import annotations

import argparse
import json
import sys
import time

import healthtable

FIELDS = ("healthy", "available", "consecutive_failures", "last_check", "last_error",
          "unhealthy_until", "override", "last_class", "last_source", "registered")


def dump(name: str, as_json: bool) -> int:
    table = healthtable.Table.open(name)
    info = table.info()
    states = table.snapshot()
    if as_json:
        out = {
            "table": name,
            "writer_attached": info.writer_attached,
            "writer_stale": info.writer_stale,
            "data_age": info.data_age,
            "providers": {n: {f: getattr(s, f) for f in FIELDS} for n, s in states.items()},
        }
        json.dump(out, sys.stdout, indent=2)
        print()
        return 0
    age = "never" if info.data_age is None else "%.1fs ago" % info.data_age
    writer = "pid %d attached" % info.writer_pid if info.writer_attached else "none attached"
    print("table '%s': %d of %d slots used; writer: %s, heartbeat %s%s"
          % (name, info.used, info.capacity, writer, age, " (stale)" if info.writer_stale else ""))
    rows = [("PROVIDER", "AVAILABLE", "HEALTHY", "FAILURES", "LAST CHECK", "UNAVAILABLE FOR",
             "OVERRIDE", "LAST ERROR")]
    now = time.time()
    for n, s in states.items():
        left = s.unhealthy_until - now
        rows.append((n, "yes" if s.available else "no", "yes" if s.healthy else "no",
                     str(s.consecutive_failures),
                     "never" if s.last_check == 0 else "%.1fs ago" % (now - s.last_check),
                     "%.0fs" % left if s.unhealthy_until and left > 0 else "-",
                     s.override, s.last_error or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m healthtable",
                                 description="Read a health table through the package.")
    sub = ap.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump", help="print a table's providers")
    d.add_argument("name", help="the table's name")
    d.add_argument("--json", action="store_true", help="JSON, with the reference field names")
    args = ap.parse_args(argv)
    try:
        return dump(args.name, args.json)
    except healthtable.Error as e:
        print("python3 -m healthtable: %s" % e, file=sys.stderr)
        return int(e.code)


if __name__ == "__main__":
    sys.exit(main())
