"""A prefork gateway's routing, as a WSGI app to copy: every worker reads
the shared health table through `healthtable`, with no table-watching code.

    HEALTHTABLE_TABLE=gateway HEALTHTABLE_CHAIN=groq,openai,ollama \\
        gunicorn --workers 4 --chdir python/examples gateway_app:app

GET /route      the provider a request would go to now, and why:
                {"pid": 1234, "provider": "openai", "reason": "available",
                 "healthy": {"groq": false, "openai": true, "ollama": true}}
GET /failed?provider=groq&status=503
                what a worker does when an upstream fails: tells the prober
                (a 429 is a rate limit, not an outage)

Each worker opens the table and takes its handles once, when gunicorn
imports the app in it; a trip, an override or a recreated table reaches
every worker on its next read, because the handles follow the table.
"""

from __future__ import annotations

import json
import os
from urllib.parse import parse_qs

import healthtable

TABLE = os.environ.get("HEALTHTABLE_TABLE", "gateway")
CHAIN = [p for p in os.environ.get("HEALTHTABLE_CHAIN", "groq,openai,ollama").split(",") if p]

table = healthtable.Table.open(TABLE)
chain = [table.handle(p) for p in CHAIN]
reporter = healthtable.Reporter(TABLE)


def route() -> dict:
    pick = table.pick(chain)
    return {
        "pid": os.getpid(),
        "provider": pick.provider,
        "reason": pick.reason,
        "healthy": {h.name: table.is_healthy(h) for h in chain},
    }


def failed(query: dict) -> dict:
    provider = query.get("provider", [""])[0]
    status = int(query.get("status", ["503"])[0])
    cls = "rate_limited" if status == 429 else "server" if status >= 500 else "client"
    queued = reporter.failure(provider, "http %d" % status, cls=cls)
    return {"pid": os.getpid(), "queued": queued}


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    try:
        if path == "/route":
            body = route()
        elif path == "/failed":
            body = failed(parse_qs(environ.get("QUERY_STRING", "")))
        else:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"try /route or /failed?provider=NAME&status=503\n"]
    except (healthtable.Error, ValueError) as e:
        start_response("400 Bad Request", [("Content-Type", "text/plain")])
        return [("%s\n" % e).encode()]
    data = json.dumps(body).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(data)))])
    return [data]
