#!/usr/bin/env bash
# Drives the bash completion in bash, as bash-completion would: every
# subcommand `healthctl --help` lists is offered, every option each
# subcommand's --help prints is offered after `healthctl SUB -`, fixed values
# are offered, and table names come from $HEALTHTABLE_RUN_DIR (real tables
# made with this healthctl). Exit 77 (skipped) without bash-completion.
#
#   install_completion.sh HEALTHCTL COMPLETION_FILE WORK_DIR
set -eu
healthctl=$1 completion=$2 work=$3
bc=/usr/share/bash-completion/bash_completion
if [ ! -r "$bc" ]; then
  echo "skipped: $bc is missing (apt-get install bash-completion, or scripts/install-deps.sh)"
  exit 77
fi
rm -rf "$work"; mkdir -p "$work/run"
export HEALTHTABLE_RUN_DIR=$work/run
tables=(compl-alpha-$$ compl-beta-$$)
cleanup() {
  for t in "${tables[@]}"; do "$healthctl" destroy "$t" --force >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT
for t in "${tables[@]}"; do "$healthctl" create "$t" >/dev/null; done

set +eu # bash-completion is not written for -eu
# shellcheck source=/dev/null
source "$bc"
source "$completion"
set -u

# complete WORD... : COMPREPLY for the command line "healthctl WORD...", the
# cursor at the end of the last word.
complete_line() {
  COMP_WORDS=(healthctl "$@")
  COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
  COMP_LINE="${COMP_WORDS[*]}"
  COMP_POINT=${#COMP_LINE}
  COMPREPLY=()
  _healthctl healthctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
  printf '%s\n' "${COMPREPLY[@]}"
}
fail=0
expect_in() { # what reply words...
  local what=$1 reply=$2; shift 2
  local w
  for w in "$@"; do
    if grep -qxF -- "$w" <<<"$reply"; then :; else
      echo "MISSING: $what does not offer '$w' (offered: $(echo $reply))"; fail=1; fi
  done
}

commands=$("$healthctl" --help | awk '/^Subcommands:/ { on = 1; next } on && /^$/ { exit } on { print $1 }')
[ -n "$commands" ] || { echo "WRONG: no subcommands in healthctl --help"; exit 1; }
reply=$(complete_line "")
expect_in "healthctl <TAB>" "$reply" $commands
echo "subcommands offered: $(echo $reply)"
expect_in "healthctl -<TAB>" "$(complete_line -)" $("$healthctl" --help | awk '/^Options:/ { on = 1; next } on && /^$/ { exit } on' | grep -oE -- '--[a-z][a-z-]*')

for c in $commands; do
  opts=$("$healthctl" "$c" --help | awk '/^Options:/ { on = 1; next } on && /^$/ { exit } on' |
         grep -oE -- '(^|[ ,])-(-[a-z][a-z-]*|[a-zA-Z])' | tr -d ' ,' | sort -u)
  expect_in "healthctl $c -<TAB>" "$(complete_line "$c" -)" $opts
done

# Table names, for a reader and a writer, and a prefix narrows them.
expect_in "healthctl info <TAB>" "$(complete_line info "")" "${tables[@]}"
expect_in "healthctl set <TAB>" "$(complete_line set "")" "${tables[@]}"
reply=$(complete_line dump compl-a)
[ "$reply" = "${tables[0]}" ] || { echo "WRONG: healthctl dump compl-a<TAB> offers '$reply'"; fail=1; }
# An option's value is skipped when counting positionals.
expect_in "healthctl dump --owner root <TAB>" "$(complete_line dump --owner root "")" "${tables[@]}"
# create takes a new name: nothing offered.
reply=$(complete_line create "")
[ -z "$reply" ] || { echo "WRONG: healthctl create <TAB> offers '$reply'"; fail=1; }

# Fixed values.
expect_in "healthctl set T P <TAB>" "$(complete_line set "${tables[0]}" groq "")" down up auto
expect_in "healthctl record T P <TAB>" "$(complete_line record "${tables[0]}" groq "")" success failure
expect_in "healthctl route --policy <TAB>" "$(complete_line route --policy "")" panic none
expect_in "healthctl record --class <TAB>" "$(complete_line record --class "")" \
  timeout connect server rate_limited auth client other
expect_in "healthctl info --owner <TAB>" "$(complete_line info --owner "")" root

[ "$fail" -eq 0 ] && echo "ok: every subcommand, option, value and table name is completed"
exit $fail
