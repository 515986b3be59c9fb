# How asr_llm.sh runs its jobs: "${train_cmd} JOB=1:N <log> <command>" (data, statistics, training) and
# "${decode_cmd} ..." (decoding). Options such as --gpu N are understood by every backend.
cmd_backend=local

case "${cmd_backend}" in
    local)
        # All jobs on this machine, in parallel (utils/run_local.sh --help).
        train_cmd="utils/run_local.sh"
        decode_cmd="utils/run_local.sh"
        ;;
    # ---- Slurm backend: to be added here ----
    # slurm)
    #     train_cmd="utils/run_slurm.sh"   # same interface as run_local.sh, submits with sbatch
    #     decode_cmd="utils/run_slurm.sh"
    #     ;;
    *)
        echo "cmd.sh: unknown cmd_backend '${cmd_backend}' (available: local)" >&2
        return 1
        ;;
esac
