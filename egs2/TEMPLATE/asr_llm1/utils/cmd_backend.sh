#!/usr/bin/env bash
# Sourced by a recipe's cmd.sh with cmd_backend set: defines train_cmd and decode_cmd, the commands asr_llm.sh
# runs its jobs with ("${train_cmd} JOB=1:N <log> <command>"). Options such as --gpu N work with every backend.
#   local  all jobs on this machine, in parallel (utils/run_local.sh --help)
#   slurm  array jobs through sbatch, waited for (utils/slurm.sh --help); cluster settings in conf/slurm.conf
#          (see egs2/librispeech_llm/asr1/conf/slurm.conf) or SLURM_SH_* environment variables.
#          utils/slurm.pl is utils/slurm.sh under the name with which espnet2.bin.launch starts multi-node
#          training through srun (asr_llm.sh --num_nodes N).
if [ "${BASH_SOURCE[0]}" = "$0" ]; then  # run, not sourced: show the help above
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
fi
# shellcheck disable=SC2034  # train_cmd, decode_cmd: read by the script that sources this file
case "${cmd_backend:-local}" in
    local)
        train_cmd="utils/run_local.sh"
        decode_cmd="utils/run_local.sh"
        ;;
    slurm)
        train_cmd="utils/slurm.pl"
        decode_cmd="utils/slurm.pl"
        ;;
    *)
        echo "cmd.sh: unknown cmd_backend '${cmd_backend}' (available: local, slurm)" >&2
        return 1
        ;;
esac
