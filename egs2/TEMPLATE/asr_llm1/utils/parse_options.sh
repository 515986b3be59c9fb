#!/usr/bin/env bash
# Kaldi-compatible option parsing. Source it AFTER declaring the options:
#
#     nj=4            # Number of parallel jobs.
#     use_gpu=false   # Decode on GPU (true/false).
#     . utils/parse_options.sh
#
# Every "--name value" (or "--name=value") at the front of the arguments sets the already
# declared variable "name" ("-" in names is read as "_"); parsing stops at the first argument
# that is not an option (or at "--"), and the remaining arguments stay in "$@" for the caller.
# A variable whose default is true/false only accepts true/false. Unknown options are errors.
#
# --help / -h prints "${help_message}" when the caller set one; otherwise a help GENERATED from the
# caller's own declarations: every "name=default  # text" line above the line that sources this
# file (continuation lines "    # more text" right below a declaration are appended; "## Title"
# lines start a group). The values printed are the live ones, i.e. after the options that
# preceded --help. The script's header comment and "${help_usage}" (if set) are printed first.

_po_script="${BASH_SOURCE[1]:-$0}"

_po_print_help() {
    local _po_line _po_n _po_t _po_v _po_left _po_in_decl=false _po_count=0
    local _po_pad="                                      "
    # the script's header comment (after the #! line), then ${help_usage}, then the options
    sed -n '2,/^[^#]/{/^#/!q;s/^# \{0,1\}//;p}' "${_po_script}"
    if [ -n "${help_usage:-}" ]; then
        printf '\n%s\n' "${help_usage}"
    fi
    printf '\nOptions (current values; set with --name value):\n'
    while IFS= read -r _po_line || [ -n "${_po_line}" ]; do
        if [[ ${_po_line} =~ ^[^#]*parse_options\.sh ]]; then
            break
        elif [[ ${_po_line} =~ ^##[[:space:]]*(.*[^[:space:]])[[:space:]]*$ ]]; then
            printf '\n  %s\n' "${BASH_REMATCH[1]}"
            _po_in_decl=false
        elif [[ ${_po_line} =~ ^([A-Za-z_][A-Za-z0-9_]*)=[^#]*[[:space:]]#[[:space:]]*(.*)$ ]]; then
            _po_n=${BASH_REMATCH[1]}
            _po_t=${BASH_REMATCH[2]}
            _po_v=${!_po_n-}
            if [ -z "${_po_v}" ] || [[ ${_po_v} =~ [[:space:]] ]]; then
                _po_v="\"${_po_v}\""
            fi
            _po_left="--${_po_n} ${_po_v}"
            if [ ${#_po_left} -le 36 ]; then
                printf '    %-36s %s\n' "${_po_left}" "${_po_t}"
            else
                printf '    %s\n    %s %s\n' "${_po_left}" "${_po_pad:0:36}" "${_po_t}"
            fi
            _po_in_decl=true
            _po_count=$((_po_count + 1))
        elif ${_po_in_decl} && [[ ${_po_line} =~ ^[[:space:]]+#[[:space:]]*(.*)$ ]]; then
            printf '    %s %s\n' "${_po_pad:0:36}" "${BASH_REMATCH[1]}"
        else
            _po_in_decl=false
        fi
    done <"${_po_script}"
    [ "${_po_count}" -gt 0 ] || echo "    (none)"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --)  # end of options: "--" and what follows stay in "$@" for the caller
            break
            ;;
        --help | -h)
            if [ -n "${help_message:-}" ]; then
                printf '%s\n' "${help_message}"
            else
                _po_print_help
            fi
            exit 0
            ;;
        --*=*)
            _po_name=${1%%=*}
            _po_value=${1#*=}
            shift
            set -- "${_po_name}" "${_po_value}" "$@"
            continue
            ;;
        --*)
            _po_name=${1#--}
            _po_name=${_po_name//-/_}
            if ! [[ ${_po_name} =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || [ -z "${!_po_name+set}" ]; then
                echo "$(basename "${_po_script}"): unknown option $1 (see --help)" >&2
                exit 1
            fi
            if [ $# -lt 2 ]; then
                echo "$(basename "${_po_script}"): option $1 needs a value" >&2
                exit 1
            fi
            _po_old=${!_po_name}
            if [ "${_po_old}" = true ] || [ "${_po_old}" = false ]; then
                if [ "$2" != true ] && [ "$2" != false ]; then
                    echo "$(basename "${_po_script}"): option $1 takes true or false, got '$2'" >&2
                    exit 1
                fi
            fi
            printf -v "${_po_name}" '%s' "$2"
            shift 2
            ;;
        *)
            break
            ;;
    esac
done
unset _po_name _po_value _po_old
true
