#!/usr/bin/env bash
# espnet_speechllm entry point.
#   ./run_all.sh            set up tools/ if needed, then run the embedded recipe egs2/synth_llm/asr1
#                           end to end (stages 1-13, synthetic corpus, 2 CPU cores, no network)
#   ./run_all.sh --test     set up tools/ if needed, then lint (tools/lint.sh: ruff, shellcheck) and run the
#                           test suite (what CI runs); fails if either fails
#   ./run_all.sh -- ARGS    extra ARGS go to the recipe's run.sh (e.g. -- --stage 9 --stop_stage 13)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

mode=recipe
recipe_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --test) mode="test"; shift ;;
        --) shift; recipe_args=("$@"); break ;;
        -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option: $1 (see --help)" >&2; exit 1 ;;
    esac
done

tools/setup.sh
# shellcheck disable=SC1091
. tools/activate_python.sh

if [ "${mode}" = test ]; then
    lint_status=0
    tools/lint.sh || lint_status=$?
    python -m pytest -q test
    [ "${lint_status}" -eq 0 ] || { echo "tools/lint.sh failed (see its output above)" >&2; exit "${lint_status}"; }
    exit 0
fi
cd egs2/synth_llm/asr1
exec ./run.sh "${recipe_args[@]}"
