#!/bin/sh
# The man pages are those of these binaries: healthctl(1) has a section for
# every subcommand `healthctl --help` lists and every option each
# subcommand's --help prints; healthprobe(8) every option of
# `healthprobe --help`; healthtable(7) renders. The lists come from the
# binaries, so a new subcommand or option cannot be missed.
#
#   install_man.sh HEALTHCTL HEALTHPROBE MAN_DIR
set -eu
healthctl=$1 healthprobe=$2 man=$3
fail=0
# A page as plain text (hyphens plain, no bold or underline).
render() { MANWIDTH=200 man --no-hyphenation --no-justification -E ascii -l "$1" 2>/dev/null | col -bx; }
options() { awk '/^Options:/ { on = 1; next } on && /^$/ { exit } on' | grep -oE -- '--[a-z][a-z-]*' | sort -u; }

text=$(mktemp)
trap 'rm -f "$text"' EXIT
render "$man/healthctl.1" >"$text"
grep -q '^NAME' "$text" || { echo "WRONG: healthctl.1 does not render"; exit 1; }
commands=$("$healthctl" --help | awk '/^Subcommands:/ { on = 1; next } on && /^$/ { exit } on { print $1 }')
[ -n "$commands" ] || { echo "WRONG: no subcommands in healthctl --help"; exit 1; }
for c in $commands; do
  if grep -q "^   healthctl $c\$" "$text"; then echo "ok: healthctl.1 has 'healthctl $c'"; else
    echo "MISSING: healthctl.1 has no section 'healthctl $c'"; fail=1; fi
  for o in $("$healthctl" "$c" --help | options); do
    # The option within that subcommand's section (up to the next one).
    if awk -v c="   healthctl $c" -v o="$o" '$0 == c { on = 1; next } on && /^   healthctl / { exit }
                                             on && index($0, o) { found = 1 } END { exit !found }' "$text"; then :
    else echo "MISSING: healthctl.1 has no '$o' under 'healthctl $c'"; fail=1; fi
  done
done
for o in $("$healthctl" --help | options); do
  grep -qF -- "$o" "$text" || { echo "MISSING: healthctl.1 has no '$o'"; fail=1; }
done
grep -q '^EXIT STATUS' "$text" || { echo "MISSING: healthctl.1 has no EXIT STATUS"; fail=1; }
version=$("$healthctl" --version | awk '{ print $2 }')
grep -qF "healthtable $version" "$text" || { echo "MISSING: healthctl.1 is not of version $version"; fail=1; }

render "$man/healthprobe.8" >"$text"
grep -q '^NAME' "$text" || { echo "WRONG: healthprobe.8 does not render"; exit 1; }
for o in $("$healthprobe" --help | options); do
  if grep -qF -- "$o" "$text"; then echo "ok: healthprobe.8 has '$o'"; else
    echo "MISSING: healthprobe.8 has no '$o'"; fail=1; fi
done
# The footer names the version the binary reports.
version=$("$healthprobe" --version | awk '{ print $2 }')
grep -qF "healthtable $version" "$text" || { echo "MISSING: healthprobe.8 is not of version $version"; fail=1; }

render "$man/healthtable.7" >"$text"
for s in NAME DESCRIPTION FILES ENVIRONMENT 'SEE ALSO'; do
  grep -q "^$s" "$text" || { echo "MISSING: healthtable.7 has no $s"; fail=1; }
done
exit $fail
