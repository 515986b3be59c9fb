# Sourced by asr_llm.sh: the Python environment of tools/ and the settings every stage expects.
# shellcheck shell=bash
MAIN_ROOT=$(cd "$(dirname "$(readlink -f asr_llm.sh)")/../../.." && pwd)
# shellcheck disable=SC1091
. "${MAIN_ROOT}/tools/activate_python.sh"
# Lets the recipe run before the package is installed (tools/ installs it editable).
export PYTHONPATH="${MAIN_ROOT}${PYTHONPATH:+:${PYTHONPATH}}"
export LC_ALL=C
export PYTHONIOENCODING=UTF-8
# Offline by default: models come from local dirs, so no Hugging Face hub request is made at run time (export
# either variable as 0 before running to allow one).
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
export TRANSFORMERS_OFFLINE=${TRANSFORMERS_OFFLINE:-1}
