#!/usr/bin/env bash
# Lints the repository: ruff on the Python code (rules in ruff.toml) and shellcheck on every shell script of
# the recipes and tools. Recipe scripts are checked from each recipe dir, where they run, so that the files
# they source (utils/parse_options.sh, ./path.sh, ./cmd.sh, ...) are followed. Exits non-zero on a finding.
#
#   tools/lint.sh
set -euo pipefail

case "${1:-}" in
    -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    "") ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 1 ;;
esac
cd "$(dirname "${BASH_SOURCE[0]}")/.."

status=0
echo "ruff check"
ruff=ruff
[ -x tools/venv/bin/ruff ] && ruff=tools/venv/bin/ruff
"${ruff}" check --quiet . || status=1

echo "shellcheck: run_all.sh .ci/run tools/*.sh"
shellcheck -x run_all.sh .ci/run tools/*.sh || status=1
for recipe in egs2/*/asr1; do
    # Every script the recipe runs: its own and those shared from egs2/TEMPLATE through symlinks.
    scripts=()
    for f in "${recipe}"/*.sh "${recipe}"/local/*.sh "${recipe}"/scripts/*.sh "${recipe}"/utils/*.sh; do
        [ -f "${f}" ] && scripts+=("${f#"${recipe}"/}")
    done
    echo "shellcheck: ${recipe} (${#scripts[@]} scripts)"
    (cd "${recipe}" && shellcheck -x "${scripts[@]}") || status=1
done
exit "${status}"
