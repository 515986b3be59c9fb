# How asr_llm.sh runs its jobs: "${train_cmd} JOB=1:N <log> <command>" (data, statistics, training) and
# "${decode_cmd} ..." (decoding). Options such as --gpu N are understood by every backend.
# Choose the backend here or per run: CMD_BACKEND=slurm ./run.sh ...
cmd_backend=${CMD_BACKEND:-local}

case "${cmd_backend}" in
    local)
        # All jobs on this machine, in parallel (utils/run_local.sh --help).
        train_cmd="utils/run_local.sh"
        decode_cmd="utils/run_local.sh"
        ;;
    slurm)
        # Array jobs through sbatch, waited for (utils/slurm.sh --help); cluster settings in conf/slurm.conf
        # (copy and adapt ../../librispeech_llm/asr1/conf/slurm.conf) or SLURM_SH_* environment variables. utils/slurm.pl is utils/slurm.sh under the name with which
        # espnet2.bin.launch starts multi-node training through srun (asr_llm.sh --num_nodes N).
        train_cmd="utils/slurm.pl"
        decode_cmd="utils/slurm.pl"
        ;;
    *)
        echo "cmd.sh: unknown cmd_backend '${cmd_backend}' (available: local, slurm)" >&2
        return 1
        ;;
esac
