#!/usr/bin/env bash
# Installs every build, test and benchmark dependency of healthtable from
# Debian 12's archive. Idempotent: packages already present are left alone.
# Run as root (or with sudo available). Used by the README commands and CI.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libboost-dev            # Boost.Interprocess (header-only)
  doctest-dev             # tests
  libbenchmark-dev        # Google Benchmark
  libcli11-dev            # argument parsing
  nlohmann-json3-dev      # JSON output
  libtomlplusplus-dev     # prober config
  libcurl4-openssl-dev    # HTTP probes
  libssl-dev              # healthprobe's shared CA store; the HTTPS test server
  libsystemd-dev          # healthprobe's sd_notify: Type=notify, watchdog, STATUS=
  libhiredis-dev          # healthprobe's optional [fleet] link to Redis
  redis-server            # the fleet tests' Redis on loopback (tests/fleet)
  libmicrohttpd-dev       # healthprobe's GET /metrics (docs/metrics.md)
  prometheus              # the test that a real Prometheus scrapes /metrics (ctest -L prometheus); promtool
  systemd                 # systemd-analyze, which checks the example unit (tests/prober)
  ca-certificates         # the system CA bundle the prober's trust tests read
  libfmt-dev              # formatting
  openssl                 # test certificates for HTTPS probes
  python3                 # the reference-module benchmark and test helpers
  python3-dev pybind11-dev  # the Python package's extension (python/)
  python3-pytest          # the Python package's tests (ctest -L python)
  python3-venv python3-wheel  # `pip install ./python` into a venv, from Debian's setuptools
  gunicorn                # the prefork test of the Python package
  util-linux              # unshare, setpriv, runuser for the reliability tests
  tmux                    # the real-terminal test of `healthctl watch`
  clang libclang-rt-14-dev  # libFuzzer target
  nginx libnginx-mod-http-lua  # the nginx integration's test (ctest -L nginx); brings lua-resty-core
  help2man                # healthctl(1), healthprobe(8) from the binaries' --help (cmake/man.cmake)
  pandoc                  # healthtable(7) from docs/man/healthtable.7.md
  man-db bsdextrautils    # man -l and col -b: tests/install renders the pages it checks as text
  bash-completion         # tests/install drives tools/completion/healthctl.bash in bash
  dpkg-dev                # dpkg-shlibdeps: the .deb's Depends (cmake/packaging.cmake)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-deps: missing packages (${missing[*]}) and not root; run as root" >&2
    exit 1
  fi
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
