#!/usr/bin/env bash
# The healthtable demo, end to end, in one command (run as root on a fresh
# Debian 12, or as a user with sudo for the packages):
#
#   scripts/demo.sh
#
# 1. installs the build dependencies (scripts/install-deps.sh);
# 2. builds healthprobe and healthctl (Release, build/demo);
# 3. starts a local HTTP server on 127.0.0.1 (python3 -m http.server) and
#    picks a 127.0.0.1 port where nothing listens;
# 4. runs healthprobe for a few seconds with docs/examples/demo.toml (ports
#    filled in), probing both every second: it creates the `demo` table;
# 5. prints `healthctl dump demo`: one healthy provider, one tripped;
# 6. checks that answer with `healthctl check`, and cleans up (servers
#    killed, segment destroyed) whatever happens.
#
# Environment: DEMO_BUILD_DIR (default build/demo), DEMO_SECONDS (how long
# healthprobe runs, default 4), DEMO_SKIP_DEPS=1 to skip step 1.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${DEMO_BUILD_DIR:-$root/build/demo}"
seconds="${DEMO_SECONDS:-4}"
segment=demo

say() { printf '\n== %s\n' "$*"; }

work="$(mktemp -d -t healthtable-demo.XXXXXX)"
web_pid=""
probe_pid=""
created=0
cleanup() {
  local rc=$?
  # Only the processes this script started, by pid.
  if [ -n "$probe_pid" ] && kill -0 "$probe_pid" 2>/dev/null; then
    kill -TERM "$probe_pid" 2>/dev/null || true
    wait "$probe_pid" 2>/dev/null || true
  fi
  if [ -n "$web_pid" ] && kill -0 "$web_pid" 2>/dev/null; then
    kill "$web_pid" 2>/dev/null || true
    wait "$web_pid" 2>/dev/null || true
  fi
  if [ "$created" = 1 ] && [ -x "$build/tools/healthctl/healthctl" ]; then
    "$build/tools/healthctl/healthctl" destroy "$segment" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
  if [ "$rc" -ne 0 ]; then echo "demo: FAILED (exit $rc)" >&2; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "${DEMO_SKIP_DEPS:-0}" != 1 ]; then
  say "installing dependencies"
  "$root/scripts/install-deps.sh"
fi

say "building healthprobe and healthctl (Release) in $build"
# Output to a log (shown on failure) so the demo's own output stays readable.
if ! { cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release \
         -DHEALTHTABLE_BUILD_TESTS=OFF -DHEALTHTABLE_BUILD_BENCH=OFF &&
       cmake --build "$build" -j2 --target healthprobe healthctl; } >"$work/build.log" 2>&1; then
  tail -40 "$work/build.log" >&2
  echo "demo: build failed (full log above was $work/build.log)" >&2
  exit 1
fi
echo "built $build/tools/healthprobe/healthprobe and $build/tools/healthctl/healthctl"
healthprobe="$build/tools/healthprobe/healthprobe"
healthctl="$build/tools/healthctl/healthctl"

if [ -e "${HEALTHTABLE_RUN_DIR:-/run/healthtable}/$segment" ]; then
  say "removing a previous '$segment' table"
  "$healthctl" destroy "$segment"
fi

# A free 127.0.0.1 port: bind port 0, read the number, let it go.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
web_port="$(free_port)"
dead_port="$(free_port)"
while [ "$dead_port" = "$web_port" ]; do dead_port="$(free_port)"; done

say "starting a healthy HTTP endpoint on 127.0.0.1:$web_port (nothing listens on 127.0.0.1:$dead_port)"
mkdir -p "$work/www"
echo ok >"$work/www/index.html"
python3 -m http.server "$web_port" --bind 127.0.0.1 --directory "$work/www" \
  >"$work/http.log" 2>&1 &
web_pid=$!
python3 - "$web_port" <<'EOF'
import socket, sys, time
deadline = time.time() + 10
while True:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
        break
    except OSError:
        if time.time() > deadline:
            sys.exit("demo: the HTTP server did not start")
        time.sleep(0.05)
EOF

# The shipped example with this run's ports.
sed -e "s/127\.0\.0\.1:8765/127.0.0.1:$web_port/" -e "s/127\.0\.0\.1:8766/127.0.0.1:$dead_port/" \
  "$root/docs/examples/demo.toml" >"$work/demo.toml"
say "config ($work/demo.toml, from docs/examples/demo.toml)"
grep -v '^#' "$work/demo.toml" | sed '/^$/d'

say "running healthprobe for ${seconds}s (interval 1s, failure threshold 2)"
"$healthprobe" --config "$work/demo.toml" 2>"$work/healthprobe.log" &
probe_pid=$!
created=1
sleep "$seconds"
if ! kill -0 "$probe_pid" 2>/dev/null; then
  cat "$work/healthprobe.log" >&2
  echo "demo: healthprobe exited early" >&2
  exit 1
fi

say "healthctl dump $segment"
"$healthctl" dump "$segment"

say "healthctl check (exit 0: route to it; 1: skip it)"
ok=1
"$healthctl" check "$segment" local-web || ok=0
if "$healthctl" check "$segment" nothing-listens; then ok=0; fi

say "stopping healthprobe (SIGTERM)"
kill -TERM "$probe_pid"
wait "$probe_pid"
probe_pid=""
echo "healthprobe log (journald would strip the <N> priority prefixes):"
cat "$work/healthprobe.log"

if [ "$ok" != 1 ]; then
  echo "demo: expected local-web healthy and nothing-listens tripped" >&2
  exit 1
fi
say "demo OK: one healthy provider, one tripped; cleaning up"
