#!/usr/bin/env bash
# Runs a command as N jobs on a Slurm cluster (the Slurm backend of cmd.sh; Kaldi slurm.pl style).
#
#   slurm.sh [options] JOB=1:N <log> <command> [args...]
#   slurm.sh [options] <log> <command> [args...]
#
# Submits ONE sbatch array job (tasks 1..N); in task j every "JOB" in <log> and in the command becomes j.
# The command's arguments are passed on unchanged, as an argument vector (";", "|", ">", "$(...)" are literal
# text). Each task's stdout and stderr are appended to its log, after the command (shell-quoted) and a
# "# Started at" line, and "# Ended (code C) ..." is its last line (as with run_local.sh). Waits for the array (squeue), then fails if any task failed,
# naming each failed task with its Slurm state (sacct: FAILED, TIMEOUT, OUT_OF_MEMORY, ...) and its log,
# and showing the end of the first one. Ctrl-C cancels the job (scancel).
#
# Cluster settings come from --config (default conf/slurm.conf of the recipe, if present), then from
# environment variables SLURM_SH_<NAME> (e.g. SLURM_SH_PARTITION=debug), then from the options of a call
# (--partition, --time, --mem): each later source wins. The config file is a bash file of NAME=value lines:
#   partition gpu_partition account time gpu_time mem mem_per_gpu cpus_per_gpu gpu_request extra_opts
#   poll_interval sync_wait
# (see egs2/librispeech_llm/asr1/conf/slurm.conf for their meaning).
#
# --num_nodes N (N > 1) asks for N nodes with one task each and runs the command once on the first node:
# the command itself starts the per-node processes with srun, which is what espnet2.bin.launch does for a
# multi-node training job when its --cmd is named slurm.pl (utils/slurm.pl is a link to this script).
set -euo pipefail

help_usage="Usage: slurm.sh [options] JOB=1:N <log> <command> [args...]
       slurm.sh [options] <log> <command> [args...]
Submits the command as a Slurm array job of N tasks and waits for it; every JOB in <log> and the command
becomes the task number."

config=conf/slurm.conf  # Cluster settings file (bash NAME=value lines); a missing default is skipped.
## Resources of each job ("" = from the config file or SLURM_SH_* environment variables)
gpu=0              # GPUs per job (per node when --num_nodes > 1).
num_threads=1      # CPU cores per task (sbatch --cpus-per-task; at least gpu x cpus_per_gpu).
mem=""             # Memory per job, e.g. 16G (sbatch --mem).
time=""            # Time limit, e.g. 1-00:00:00 (sbatch --time).
num_nodes=1        # Nodes per job (> 1: one task per node, for multi-node training).
partition=""       # Partition (sbatch --partition).
account=""         # Account (sbatch --account).
name=""            # Job name (default: the log file name without JOB and extension).
max_jobs_run=0     # Run at most this many array tasks at once (sbatch --array=1-N%M; 0: no limit).

. "$(dirname "$0")/parse_options.sh"

prog=slurm.sh
die() { echo "${prog}: $*" >&2; exit 1; }

. "$(dirname "$0")/job_range.sh"
if parse_job_range "${1:-}"; then shift; fi
if [ $# -lt 2 ]; then
    echo "${help_usage}" >&2
    exit 1
fi
logspec=$1
shift
for tool in sbatch squeue sacct; do
    command -v "${tool}" >/dev/null || die "'${tool}' not found on PATH: the Slurm backend needs a Slurm client (or use cmd_backend=local in cmd.sh)"
done

# ------------------------------------------------------------------------------------------ settings
# The config file is read by a separate bash, so it can never overwrite this script's variables.
keys=(partition gpu_partition account time gpu_time mem mem_per_gpu cpus_per_gpu gpu_request extra_opts
      poll_interval sync_wait)
declare -A cfg=([cpus_per_gpu]=8 [gpu_request]="--gres=gpu:{n}" [poll_interval]=10 [sync_wait]=60)
if [ -n "${config}" ]; then
    if [ -f "${config}" ]; then
        errors=$(bash -c 'set -e; . "$1"' _ "${config}" 2>&1 >/dev/null) || die "${config} does not run as a bash file: ${errors}"
        while IFS= read -r -d '' kv; do
            cfg[${kv%%=*}]=${kv#*=}
        done < <(bash -c '. "$1" >/dev/null; shift; for k in "$@"; do [ -z "${!k+x}" ] || printf "%s=%s\0" "$k" "${!k}"; done' \
            _ "${config}" "${keys[@]}")
    elif [ "${config}" != conf/slurm.conf ]; then
        die "--config ${config}: no such file"
    fi
fi
for k in "${keys[@]}"; do
    env_name="SLURM_SH_${k^^}"
    if [ -n "${!env_name+x}" ]; then cfg[$k]=${!env_name}; fi
done

# Options of this call win over config and environment; GPU jobs use the gpu_* settings when given.
if [ "${gpu}" -gt 0 ]; then
    partition=${partition:-${cfg[gpu_partition]:-${cfg[partition]:-}}}
    time=${time:-${cfg[gpu_time]:-${cfg[time]:-}}}
else
    partition=${partition:-${cfg[partition]:-}}
    time=${time:-${cfg[time]:-}}
fi
account=${account:-${cfg[account]:-}}
if [ -z "${name}" ]; then
    name=$(basename "${logspec}")
    name=${name%.*}
    [ -n "${jobvar}" ] && name=${name//.${jobvar}/} && name=${name//${jobvar}/}
    name=${name:-job}
fi

opts=(--parsable --export=ALL "--job-name=${name}")
[ -n "${partition}" ] && opts+=("--partition=${partition}")
[ -n "${account}" ] && opts+=("--account=${account}")
[ -n "${time}" ] && opts+=("--time=${time}")
if [ -n "${mem}" ]; then
    opts+=("--mem=${mem}")
elif [ "${gpu}" -gt 0 ] && [ -n "${cfg[mem_per_gpu]:-}" ]; then
    opts+=("--mem-per-gpu=${cfg[mem_per_gpu]}")
elif [ -n "${cfg[mem]:-}" ]; then
    opts+=("--mem=${cfg[mem]}")
fi
cpus=${num_threads}
if [ "${gpu}" -gt 0 ]; then
    read -r -a _gpu_request <<<"${cfg[gpu_request]//\{n\}/${gpu}}"  # e.g. "--gres=gpu:{n}": options, one word each
    opts+=("${_gpu_request[@]}")
    [ $((gpu * cfg[cpus_per_gpu])) -gt "${cpus}" ] && cpus=$((gpu * cfg[cpus_per_gpu]))
fi
opts+=("--cpus-per-task=${cpus}")
if [ "${num_nodes}" -gt 1 ]; then
    opts+=("--nodes=${num_nodes}" --ntasks-per-node=1)
fi
if [ -n "${jobvar}" ]; then
    array="${first}-${last}"
    [ "${max_jobs_run}" -gt 0 ] && array+="%${max_jobs_run}"
    opts+=("--array=${array}")
fi
# shellcheck disable=SC2206
[ -n "${cfg[extra_opts]:-}" ] && opts+=(${cfg[extra_opts]})

# ------------------------------------------------------------------------------------------ job script
# The command's arguments go into the job script as one bash array, each quoted with printf %q: no shell
# reads them, so ";", "|", ">", "$(...)" or backquotes in an argument stay literal text, as in run_local.sh.
cmd_array=$(printf ' %q' "$@")

logdir=$(dirname "${logspec}")
mkdir -p "${logdir}/q"
qdir=$(cd "${logdir}/q" && pwd)  # absolute: sbatch may run the job elsewhere (--chdir in extra_opts)
stamp=$(date +%Y%m%d%H%M%S).$$
script=${qdir}/${name}.${stamp}.sh
rcdir=${qdir}/${name}.${stamp}.rc
mkdir -p "${rcdir}"
{
    echo "#!/usr/bin/env bash"
    echo "# Written by utils/slurm.sh: one task of the job ${name}; run by sbatch."
    printf 'cd %q\n' "${PWD}"
    printf 'jobvar=%q\nlog=%q\nrcdir=%q\n' "${jobvar}" "${logspec}" "${rcdir}"
    printf 'args=(%s)\n' "${cmd_array# }"
    cat <<'EOF'
task=${SLURM_ARRAY_TASK_ID:-1}
if [ -n "${jobvar}" ]; then
    log=${log//${jobvar}/${task}}
    args=("${args[@]//${jobvar}/${task}}")
fi
mkdir -p "$(dirname "${log}")"
{
    printf '#'
    printf ' %q' "${args[@]}"
    printf '\n'
    echo "# Started at $(date '+%Y-%m-%d %H:%M:%S') on $(hostname) (Slurm job ${SLURM_JOB_ID:-?}${SLURM_ARRAY_TASK_ID:+, task ${task}})"
} >>"${log}"
start=${SECONDS}
"${args[@]}" >>"${log}" 2>&1 </dev/null
rc=$?
echo "# Ended (code ${rc}) at $(date), elapsed time $((SECONDS - start)) seconds" >>"${log}"
echo "${rc}" >"${rcdir}/${task}"
exit "${rc}"
EOF
} >"${script}"
chmod +x "${script}"

# ------------------------------------------------------------------------------------------ submit, wait
slurm_out=${qdir}/${name}.${stamp}.%A_%a.out
[ -n "${jobvar}" ] || slurm_out=${qdir}/${name}.${stamp}.%j.out
if ! submitted=$(sbatch "${opts[@]}" "--output=${slurm_out}" "${script}" 2>&1); then
    die "sbatch failed: ${submitted}
    sbatch ${opts[*]} --output=${slurm_out} ${script}"
fi
jobid=${submitted%%;*}
jobid=$(echo "${jobid}" | tail -n 1 | tr -d '[:space:]')
[[ ${jobid} =~ ^[0-9]+$ ]] || die "sbatch printed no job id: ${submitted}"
njobs=$((last - first + 1))
echo "${prog}: submitted job ${jobid} (${name}, ${njobs} task(s)); logs: ${logspec}" >&2

trap 'scancel "${jobid}" 2>/dev/null || true; echo "${prog}: cancelled job ${jobid}" >&2; exit 130' INT TERM

in_queue() { squeue -h -j "${jobid}" -o %i 2>/dev/null | grep -q .; }
log_of() { if [ -n "${jobvar}" ]; then echo "${logspec//${jobvar}/$1}"; else echo "${logspec}"; fi; }
# "<task> <state> <exit code>" for each task sacct knows, e.g. "2 TIMEOUT 0:0" (array ranges are expanded)
sacct_states() {
    sacct -j "${jobid}" -n -P -X -o JobID,State,ExitCode 2>/dev/null | while IFS='|' read -r id state code; do
        local t=${id#*_}
        [ "${t}" = "${id}" ] && t=1
        if [[ ${t} =~ ^\[([0-9]+)-([0-9]+) ]]; then
            seq "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" | sed "s/\$/ ${state%% *} ${code}/"
        else
            echo "${t} ${state%% *} ${code}"
        fi
    done
}

declare -A state=() code=()
while :; do
    while in_queue; do sleep "${cfg[poll_interval]}"; done
    # A finished task writes its exit code; on a network file system it may show up late.
    waited=0
    while :; do
        missing=()
        for ((j = first; j <= last; j++)); do [ -f "${rcdir}/${j}" ] || missing+=("${j}"); done
        [ ${#missing[@]} -eq 0 ] && break
        [ "$(awk -v w="${waited}" -v s="${cfg[sync_wait]}" 'BEGIN { print (w >= s) }')" = 1 ] && break
        sleep "${cfg[poll_interval]}"
        waited=$(awk -v w="${waited}" -v p="${cfg[poll_interval]}" 'BEGIN { print w + p }')
    done
    [ ${#missing[@]} -eq 0 ] && break
    # Tasks without an exit code: still queued (squeue hiccup), or killed by Slurm (time, memory, node).
    state=()
    code=()
    while read -r t s c; do state[$t]=$s; code[$t]=$c; done < <(sacct_states)
    active=false
    for j in "${missing[@]}"; do
        case "${state[$j]:-}" in PENDING | RUNNING | REQUEUED | CONFIGURING | COMPLETING | RESIZING | SUSPENDED) active=true ;; esac
    done
    ${active} || break
done

failed=()
declare -A why=()
for ((j = first; j <= last; j++)); do
    if [ -f "${rcdir}/${j}" ]; then
        rc=$(cat "${rcdir}/${j}")
        [ "${rc}" = 0 ] || { failed+=("${j}"); why[$j]="exit code ${rc}"; }
    else
        failed+=("${j}")
        why[$j]="${state[$j]:-no exit status; state unknown to sacct}${code[$j]:+, exit code ${code[$j]}}"
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    for j in "${failed[@]}"; do
        out=${slurm_out//%A/${jobid}}
        out=${out//%a/${j}}
        out=${out//%j/${jobid}}
        echo "${prog}: job ${j} of ${njobs} failed (${why[$j]}); log: $(log_of "${j}")  (Slurm output: ${out})" >&2
    done
    log=$(log_of "${failed[0]}")
    echo "${prog}: last lines of ${log}:" >&2
    tail -n 15 "${log}" 2>/dev/null | sed 's/^/    /' >&2 || echo "    (no log: the task never started)" >&2
    exit 1
fi
rm -rf "${rcdir}"
exit 0
