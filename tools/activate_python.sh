#!/usr/bin/env bash
# Sourced by recipes' path.sh: puts tools/venv first on PATH (made by tools/setup.sh).
_tools_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ ! -x "${_tools_dir}/venv/bin/python" ]; then
    echo "tools/venv is missing: run tools/setup.sh (or ./run_all.sh, which runs it) first" >&2
    if [ "${BASH_SOURCE[0]}" != "$0" ]; then return 1; fi  # sourced (as meant): fail the caller's line
    exit 1
fi
# shellcheck disable=SC1091
. "${_tools_dir}/venv/bin/activate"
unset _tools_dir
