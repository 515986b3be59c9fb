# Sourced by asr_llm.sh: the Python environment of tools/ and the settings every stage expects.
MAIN_ROOT=$(cd "$(dirname "$(readlink -f asr_llm.sh)")/../../.." && pwd)
# shellcheck disable=SC1091
. "${MAIN_ROOT}/tools/activate_python.sh"
# Lets the recipe run before the package is installed (tools/ installs it editable).
export PYTHONPATH="${MAIN_ROOT}${PYTHONPATH:+:${PYTHONPATH}}"
export LC_ALL=C
export PYTHONIOENCODING=UTF-8
