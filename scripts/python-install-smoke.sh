#!/usr/bin/env bash
# `pip install ./python` as the README says, on Debian's own pip and
# setuptools (no package index): into a fresh venv, then the package's
# pytest suite against what was installed, and python3 -m healthtable dump.
# The venv sees Debian's site packages for python3-wheel and python3-pytest.
#
#   scripts/python-install-smoke.sh       (test.sh runs it; a few minutes on 2 cores)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=${HEALTHTABLE_PYTHON:-/usr/bin/python3}
work=$(mktemp -d)
name="healthtable-test-py-$$-smoke"
cleanup() {
  "$work/venv/bin/python" -c "import healthtable, sys; healthtable.Writer.destroy(sys.argv[1], force=True)" \
    "$name" 2>/dev/null || true
  rm -rf -- "$work"
}
trap cleanup EXIT

"$python" -m venv --system-site-packages "$work/venv"
"$work/venv/bin/pip" install --quiet --no-build-isolation --no-index "$root/python"
cd "$work" # so that nothing imports the source tree instead of the install
"$work/venv/bin/python" -c "import healthtable; assert healthtable.__file__.startswith('$work/venv'), healthtable.__file__"
"$work/venv/bin/python" -c "
import sys, healthtable
with healthtable.Writer.create(sys.argv[1]) as w:
    w.mark_unhealthy('groq', 'http 503'); w.mark_unhealthy('groq', 'http 503')
" "$name"
"$work/venv/bin/python" -m healthtable dump "$name" | grep -q '^groq  *no  *no  *2 '
"$work/venv/bin/python" -m pytest -q -p no:cacheprovider "$root/python/tests"
echo "python-install-smoke: pip install ./python OK"
