#!/bin/sh
# Writes a help2man include file with a COMMANDS section: every subcommand
# `HEALTHCTL --help` lists, each with its own `--help` (positionals and
# options), so healthctl(1) is generated from the binary and cannot miss a
# subcommand or an option. The list is read from --help, never kept here.
#
#   man_commands.sh HEALTHCTL OUT.h2m
set -eu
healthctl=$1 out=$2
commands=$("$healthctl" --help | awk '/^Subcommands:/ { on = 1; next } on && /^$/ { exit } on { print $1 }')
if [ -z "$commands" ]; then
  echo "man_commands.sh: no subcommands in '$healthctl --help' (did its format change?)" >&2
  exit 1
fi
tmp=$out.tmp
{
  echo "[COMMANDS]"
  for c in $commands; do
    echo ".SS \"healthctl $c\""
    echo ".nf"
    # The help up to the shared footer (EXIT STATUS has it once), in roff:
    # backslashes escaped, lines that start with . or ' made literal.
    "$healthctl" "$c" --help | awk '/^Exit codes:/ { exit } { print }' |
      sed -e 's/\\/\\e/g' -e "s/^\([.']\)/\\\\\&\1/"
    echo ".fi"
  done
} >"$tmp"
mv "$tmp" "$out"
