#!/usr/bin/env bash
# Installs everything espnet_speechllm needs into tools/venv, plus the Debian packages sox, espeak-ng,
# sctk (NIST sclite) and shellcheck (tools/lint.sh) when missing. Idempotent: a second run checks and
# does nothing.
#
#   tools/setup.sh [--python python3] [--force]
set -euo pipefail

python=python3   # interpreter the venv is made from (3.10+)
force=false      # reinstall the Python stack even if it is up to date

log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (setup.sh:${BASH_LINENO[0]}) $*"; }
usage() { sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        --python) python="$2"; shift 2 ;;
        --force) force=true; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 1 ;;
    esac
done

tools_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(dirname "${tools_dir}")
venv="${tools_dir}/venv"

# --- Debian packages -------------------------------------------------------------------------------
missing=()
command -v sox >/dev/null || missing+=(sox)
command -v espeak-ng >/dev/null || missing+=(espeak-ng)
{ command -v sclite >/dev/null || [ -x /usr/lib/sctk/bin/sclite ] || [ -x /usr/bin/sclite ]; } || missing+=(sctk)
command -v shellcheck >/dev/null || missing+=(shellcheck)
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    log "installing Debian packages: ${missing[*]}"
    ${sudo} apt-get update -qq
    DEBIAN_FRONTEND=noninteractive ${sudo} apt-get install -y -qq "${missing[@]}" libsox-fmt-all >/dev/null
else
    log "Debian packages sox, espeak-ng, sctk, shellcheck: present"
fi

# --- Python venv -----------------------------------------------------------------------------------
stamp="${venv}/.espnet_speechllm.installed"
want=$(cat "${tools_dir}/requirements.txt" "${repo_dir}/setup.py" | sha256sum | cut -d' ' -f1)
if [ -f "${stamp}" ] && [ "$(cat "${stamp}")" = "${want}" ] && ! ${force}; then
    log "tools/venv is up to date with tools/requirements.txt and setup.py: nothing to do"
    exit 0
fi
[ -x "${venv}/bin/python" ] || { log "creating ${venv}"; "${python}" -m venv "${venv}"; }
# pip >= 26.3 cannot build espnet's ci_sdr dependency.
"${venv}/bin/python" -m pip install -q "pip<26.3"
log "installing the pinned stack (first time: several GB of wheels)"
"${venv}/bin/python" -m pip install -q -r "${tools_dir}/requirements.txt"
"${venv}/bin/python" -m pip install -q --no-deps -e "${repo_dir}"
echo "${want}" > "${stamp}"
log "installed: $("${venv}/bin/python" -c 'import torch, transformers, peft, espnet; print(f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}, espnet {espnet.__version__}")')"
