# shellcheck shell=bash
# How asr_llm.sh runs its jobs: local (default) or slurm, here or per run: CMD_BACKEND=slurm ./run.sh ...
# The backends are defined in utils/cmd_backend.sh.
cmd_backend=${CMD_BACKEND:-local}
. utils/cmd_backend.sh
