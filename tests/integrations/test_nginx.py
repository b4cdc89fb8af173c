#!/usr/bin/python3
"""nginx routed by the table: Debian's nginx with libnginx-mod-http-lua, 4
workers, integrations/nginx/nginx.conf.example (ports, paths and table name
substituted) in front of three local upstreams.

  test_nginx.py HEALTHCTL LIBRARY MODULE_DIR EXAMPLE_CONF NGINX

Checks, on every one of the 4 workers (told apart by X-Worker, the
worker's pid):
  - a table missing at start: every worker serves from the chain's first
    upstream, and opens the table once it exists;
  - a trip (two `healthctl record ... failure`): every request after the
    trip, so the first one each worker serves, goes to the second upstream;
  - overrides (`healthctl set ... up/down/auto`) and recovery
    (`record ... success`), likewise from the very next request;
  - a worker's report of an upstream 503 arrives on the control socket;
  - the table destroyed and recreated under running workers is followed.
Run as root, the workers drop to nobody: the run directory is made 0755
and the table keeps healthctl's default mode 0644, so they can read it.
"""
import http.client
import http.server
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HEALTHCTL, LIBRARY, MODULE_DIR, EXAMPLE, NGINX = sys.argv[1:6]
WORKERS = 4
NAME = "healthtable-test-nginx-%d" % os.getpid()

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)


class Upstream(http.server.BaseHTTPRequestHandler):
    """Answers its server's name, or 503 for the one named "flaky"."""

    def do_GET(self):
        name = self.server.provider
        body = name.encode()
        self.send_response(503 if name == "flaky" else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def start_upstream(provider):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    srv.provider = provider
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthctl(*args):
    r = subprocess.run([HEALTHCTL, *args], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError("healthctl %s: exit %d: %s" % (" ".join(args), r.returncode, r.stderr))


def get(port, path="/"):
    """One request on a new connection: (status, provider, worker pid)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path, headers={"Connection": "close"})
        r = c.getresponse()
        body = r.read().decode()
        return r.status, body, int(r.getheader("X-Worker", "0"))
    finally:
        c.close()


def worker_pids(master):
    """The master's children, from /proc."""
    pids = set()
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == master:
                    pids.add(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return pids


def every_worker(port, workers, want, stage, limit=30.0):
    """Requests until each worker has answered; every answer must be from
    `want`. Returns the seconds from the call to the last worker's first
    answer (None when a worker never answered within `limit`)."""
    start = time.monotonic()
    seen = {}
    wrong = 0
    while set(seen) != workers and time.monotonic() - start < limit:
        status, body, pid = get(port)
        if body != want:
            wrong += 1
            if wrong <= 3:
                print("%s: worker %d answered %r (%d), want %r" % (stage, pid, body, status, want))
        seen.setdefault(pid, time.monotonic() - start)
    check(wrong == 0, "%s: %d answers were not from %s" % (stage, wrong, want))
    check(set(seen) == workers, "%s: workers %s answered, want %s" % (stage, sorted(seen), sorted(workers)))
    took = max(seen.values()) if seen else None
    print("%s: %d workers answered, %d answers not from %s; last worker's first answer after %.1f ms"
          % (stage, len(seen), wrong, want, (took or 0) * 1000), flush=True)
    return took


def eventually_every_worker(port, workers, want, stage, limit=30.0):
    """For changes that take a moment (a table that appears or is
    recreated): until every worker's latest answer is from `want`."""
    start = time.monotonic()
    last = {}
    while time.monotonic() - start < limit:
        status, body, pid = get(port)
        last[pid] = body
        if set(last) == workers and all(b == want for b in last.values()):
            print("%s: every worker answers from %s after %.2f s"
                  % (stage, want, time.monotonic() - start), flush=True)
            return
        time.sleep(0.01)
    check(False, "%s: workers' latest answers %s, want all %s" % (stage, last, want))


def main():
    tmp = tempfile.mkdtemp(prefix="healthtable-test-nginx-")
    os.chmod(tmp, 0o755)
    run_dir = os.path.join(tmp, "run")
    os.mkdir(run_dir, 0o755)
    os.chmod(run_dir, 0o755)
    os.environ["HEALTHTABLE_RUN_DIR"] = run_dir
    prefix = os.path.join(tmp, "nginx")
    for d in ("", "logs", "temp"):
        os.makedirs(os.path.join(prefix, d), exist_ok=True)
    ups = {p: start_upstream(p) for p in ("primary", "secondary", "tertiary", "flaky")}
    port = free_port()
    nginx = None
    control = None
    try:
        conf = open(EXAMPLE).read()
        subs = {
            '"gateway"': '"%s"' % NAME,
            '"libhealthtable.so.0"': '"%s"' % LIBRARY,
            "/usr/local/share/healthtable/nginx/": MODULE_DIR.rstrip("/") + "/",
            "127.0.0.1:8080": "127.0.0.1:%d" % port,
            "127.0.0.1:8001": "127.0.0.1:%d" % ups["primary"].server_port,
            "127.0.0.1:8002": "127.0.0.1:%d" % ups["secondary"].server_port,
            "127.0.0.1:8003": "127.0.0.1:%d" % ups["tertiary"].server_port,
            "user www-data;": "user nobody nogroup;" if os.geteuid() == 0 else "",
        }
        for old, new in subs.items():
            check(old in conf, "the example config has %r" % old)
            conf = conf.replace(old, new)
        # The test's own chain with a failing upstream, for report().
        conf = conf.replace(
            "        llm = {",
            '        flaky = { { name = "flaky", addr = "127.0.0.1:%d" } },\n        llm = {'
            % ups["flaky"].server_port)
        conf = conf.replace(
            "  server {",
            "  upstream flaky {\n    server 0.0.0.1;\n"
            '    balancer_by_lua_block { require("healthtable").balance("flaky") }\n  }\n\n'
            "  server {")
        conf = conf.replace(
            "    location / {",
            "    location /flaky {\n      proxy_pass http://flaky;\n"
            "      add_header X-Worker $pid always;\n"
            '      log_by_lua_block { require("healthtable").report() }\n    }\n\n'
            "    location / {")
        conf = "daemon off;\nmaster_process on;\n" + conf
        conf_path = os.path.join(prefix, "nginx.conf")
        with open(conf_path, "w") as f:
            f.write(conf)

        t = subprocess.run([NGINX, "-t", "-p", prefix + "/", "-c", conf_path],
                           capture_output=True, text=True)
        if t.returncode != 0:
            raise RuntimeError("nginx -t: " + t.stderr)
        nginx = subprocess.Popen([NGINX, "-p", prefix + "/", "-c", conf_path])
        deadline = time.monotonic() + 30
        workers = set()
        while time.monotonic() < deadline:
            workers = worker_pids(nginx.pid)
            if len(workers) == WORKERS:
                try:
                    get(port)
                    break
                except OSError:
                    pass
            time.sleep(0.05)
        if len(workers) != WORKERS:
            raise RuntimeError("nginx started %d workers, want %d" % (len(workers), WORKERS))

        if os.geteuid() == 0:  # the workers really run as nobody
            import pwd
            nobody = pwd.getpwnam("nobody").pw_uid
            for w in workers:
                with open("/proc/%d/status" % w) as f:
                    uid = [l.split()[1] for l in f if l.startswith("Uid:")][0]
                check(int(uid) == nobody, "worker %d runs as uid %s, want nobody" % (w, uid))

        # No table yet: every worker serves from the first upstream.
        every_worker(port, workers, "primary", "table missing")
        healthctl("create", NAME)
        log_path = os.path.join(prefix, "logs", "error.log")
        deadline = time.monotonic() + 30
        opened = 0
        while time.monotonic() < deadline:
            opened = open(log_path).read().count("opened; routing by it")
            if opened == WORKERS:
                break
            time.sleep(0.05)
        check(opened == WORKERS, "%d workers opened the table, want %d" % (opened, WORKERS))
        every_worker(port, workers, "primary", "table healthy")

        # The trip: from the next request on, on every worker.
        healthctl("record", NAME, "primary", "failure", "--reason", "http 503")
        healthctl("record", NAME, "primary", "failure", "--reason", "http 503")
        took = every_worker(port, workers, "secondary", "primary tripped")
        figure = "trip to the 4th worker's rerouted answer: %.1f ms" % ((took or 0) * 1000)

        healthctl("set", NAME, "primary", "up")
        every_worker(port, workers, "primary", "primary forced up")
        healthctl("set", NAME, "primary", "auto")
        every_worker(port, workers, "secondary", "primary auto (still tripped)")
        healthctl("set", NAME, "secondary", "down", "--create")
        every_worker(port, workers, "tertiary", "secondary forced down")
        healthctl("set", NAME, "secondary", "auto")
        every_worker(port, workers, "secondary", "secondary auto")
        healthctl("record", NAME, "primary", "success")
        every_worker(port, workers, "primary", "primary recovered")
        healthctl("set", NAME, "primary", "down")
        every_worker(port, workers, "secondary", "primary forced down")
        healthctl("set", NAME, "primary", "auto")
        every_worker(port, workers, "primary", "primary auto")

        # A worker reports an upstream's 503 to the prober: the test binds
        # the control socket in the prober's place.
        control = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        control_path = os.path.join(run_dir, NAME, "control")
        control.bind(control_path)
        os.chmod(control_path, 0o666)  # the workers may run as nobody
        control.settimeout(10)
        status, body, pid = get(port, "/flaky")
        check(status == 503 and body == "flaky", "the flaky upstream answered %d %r" % (status, body))
        try:
            line = control.recv(1024).decode()
        except socket.timeout:
            line = "(nothing within 10 s)"
        check(line == "record flaky failure class=server http 503",
              "the worker's report was %r" % line)

        # The table destroyed and recreated under the workers: their
        # handles follow it (the library looks for the new table every
        # 250 ms, so this one is polled).
        control.close()
        control = None
        healthctl("destroy", NAME, "--force")
        healthctl("create", NAME)
        healthctl("record", NAME, "primary", "failure", "--reason", "again")
        healthctl("record", NAME, "primary", "failure", "--reason", "again")
        eventually_every_worker(port, workers, "secondary", "recreated table, primary tripped")
        healthctl("record", NAME, "primary", "success")
        every_worker(port, workers, "primary", "recreated table, primary recovered")

        errors = [l for l in open(log_path) if "[error]" in l or "[alert]" in l or "[crit]" in l]
        check(not errors, "nginx logged errors: %s" % errors[:3])
        print(figure)
    finally:
        if control:
            control.close()
        if nginx:
            nginx.send_signal(signal.SIGQUIT)
            try:
                nginx.wait(10)
            except subprocess.TimeoutExpired:
                nginx.kill()
                nginx.wait()
        for u in ups.values():
            u.shutdown()
            u.server_close()
        subprocess.run([HEALTHCTL, "destroy", NAME, "--force"], capture_output=True)
        if failures:
            print("error.log:\n" + open(os.path.join(prefix, "logs", "error.log")).read()[-4000:])
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print("%d checks failed" % len(failures))
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
