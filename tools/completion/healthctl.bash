# bash completion for healthctl (installed as
# share/bash-completion/completions/healthctl, loaded on demand by
# bash-completion). Completes subcommands, each subcommand's options, the
# values of options and arguments that have a fixed set, and table names:
# the homes in $HEALTHTABLE_RUN_DIR, else /run/healthtable.
#
# tests/install (install_completion) checks that every subcommand and option
# `healthctl --help` and `healthctl SUBCOMMAND --help` print is completed
# here: a new one must be added below.

# The homes in the run directory (each table is a directory RUN_DIR/NAME).
_healthctl_tables() {
  local dir=${HEALTHTABLE_RUN_DIR:-/run/healthtable} home
  for home in "$dir"/*/; do
    [[ -d $home ]] || continue
    home=${home%/}
    printf '%s\n' "${home##*/}"
  done
}

_healthctl() {
  local cur prev words cword
  if declare -F _init_completion >/dev/null; then
    _init_completion -n = || return
  else
    words=("${COMP_WORDS[@]}") cword=$COMP_CWORD
    cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
  fi

  local commands="create info list dump check route record set reset forget events watch grow destroy"
  # Options that take a value: the word after them is that value.
  local with_value="--slots --failure-threshold --backoff --events --owner --mode --stale-after
                    --expect --policy --reason --class --retry-after --for --since --last
                    --interval"

  # The subcommand, and how many positionals follow it before the cursor.
  local i word command="" positionals=0 skip=0
  for ((i = 1; i < cword; i++)); do
    word=${words[i]}
    if ((skip)); then
      skip=0
    elif [[ $word == -* ]]; then
      [[ $word != *=* && " ${with_value//$'\n'/ } " == *" $word "* ]] && skip=1
    elif [[ -z $command ]]; then
      command=$word
    else
      ((positionals++))
    fi
  done

  if [[ -z $command ]]; then
    if [[ $cur == -* ]]; then
      mapfile -t COMPREPLY < <(compgen -W "-h --help -V --version" -- "$cur")
    else
      mapfile -t COMPREPLY < <(compgen -W "$commands" -- "$cur")
    fi
    return
  fi

  case $prev in
    --policy)
      mapfile -t COMPREPLY < <(compgen -W "panic none" -- "$cur")
      return ;;
    --class)
      mapfile -t COMPREPLY < <(compgen -W "timeout connect server rate_limited auth client other" -- "$cur")
      return ;;
    --owner)
      mapfile -t COMPREPLY < <(compgen -u -- "$cur")
      return ;;
    --mode)
      mapfile -t COMPREPLY < <(compgen -W "0644 0640 0600" -- "$cur")
      return ;;
  esac
  if [[ " ${with_value//$'\n'/ } " == *" $prev "* ]]; then
    COMPREPLY=() # a number, a duration, a text: nothing to offer
    return
  fi

  local options
  case $command in
    create) options="--slots --failure-threshold --backoff --events --owner --mode --force" ;;
    info) options="--json --stale-after --owner" ;;
    list) options="--json --stale-after --owner" ;;
    dump) options="--format --json --expect --stale-after --owner" ;;
    check) options="-q --quiet --writer --stale-after --owner" ;;
    route) options="--policy --json --owner" ;;
    record) options="--reason --class --retry-after" ;;
    set) options="--create --for --reason" ;;
    reset) options="--overrides" ;;
    forget) options="" ;;
    events) options="-f --follow --json --since --last --owner" ;;
    watch) options="--interval --owner" ;;
    grow) options="--slots" ;;
    destroy) options="--force" ;;
    *) return ;;
  esac

  if [[ $cur == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "-h --help $options" -- "$cur")
    return
  fi

  # Positionals: NAME first (an existing table, except for create and
  # list), then what each subcommand takes.
  case $command:$positionals in
    create:* | list:*) COMPREPLY=() ;;
    *:0) mapfile -t COMPREPLY < <(compgen -W "$(_healthctl_tables)" -- "$cur") ;;
    record:2) mapfile -t COMPREPLY < <(compgen -W "success failure" -- "$cur") ;;
    set:2) mapfile -t COMPREPLY < <(compgen -W "down up auto" -- "$cur") ;;
    *) COMPREPLY=() ;;
  esac
}
complete -F _healthctl healthctl
