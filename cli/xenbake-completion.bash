# bash completion for xenbaked and the xenbake-* tools (options, their choices, subcommands).
# Installed once per program name, so bash-completion loads it for whichever is typed first;
# the data below it is generated at build time from each program's command-line definition.

declare -gA _xenbake_options _xenbake_values _xenbake_choices _xenbake_commands

_xenbake() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev="" prog=${COMP_WORDS[0]##*/} key i
  ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
  key=$prog
  for ((i = 1; i < COMP_CWORD; i++)); do
    if [[ " ${_xenbake_commands[$prog]-} " == *" ${COMP_WORDS[i]} "* ]]; then
      key="$prog ${COMP_WORDS[i]}"
      break
    fi
  done
  COMPREPLY=()
  if [[ -n $prev && " ${_xenbake_values[$key]-} " == *" $prev "* ]]; then
    local choices=${_xenbake_choices["$key $prev"]-}
    if [[ -n $choices ]]; then
      mapfile -t COMPREPLY < <(compgen -W "$choices" -- "$cur")
    else
      mapfile -t COMPREPLY < <(compgen -f -- "$cur")
    fi
  elif [[ $cur == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "${_xenbake_options[$key]-}" -- "$cur")
  elif [[ $key == "$prog" && -n ${_xenbake_commands[$prog]-} ]]; then
    mapfile -t COMPREPLY < <(compgen -W "${_xenbake_commands[$prog]}" -- "$cur")
  else
    mapfile -t COMPREPLY < <(compgen -f -- "$cur")
  fi
  return 0
}
