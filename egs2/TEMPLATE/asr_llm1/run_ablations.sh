#!/usr/bin/env bash
# Runs the ablation tables of a recipe (the paper's three claims) and writes them into RESULTS.md.
#
# Stages 1-8 of the recipe are shared: run ./run.sh --stop_stage 8 first. Each variant of
# conf/ablations.yaml (espnet_speechllm.bin.ablation_plan explains the format) gets its own training
# (stages 9-10) under exp/asr_llm_abl_<table>_<variant>_s<seed>, decoding and scoring (11-12) under
# decode_<variant>/; data variants first build and dump their own training set (stages 3-6). Everything
# goes through ./run.sh, so the recipe's settings (GPUs, cmd.sh backend, test sets) apply unchanged, and
# every step is skipped when already done: rerunning resumes.
#
# Examples:
#   local/run_ablations.sh                                  # all tables, seed 0
#   local/run_ablations.sh --tables "b_matching" --seeds "0 1 2"
#   local/run_ablations.sh --max_test_utts 100 -- --ngpu 0  # after "--": options for every ./run.sh call
set -euo pipefail
orig_args=$(printf '%q ' "$@")

help_usage="Usage: local/run_ablations.sh [options] [-- <options for ./run.sh>]"
spec=conf/ablations.yaml                      # Ablation spec: base configs + per-variant overrides.
tables="a_finetune b_matching c_insertion"    # Tables of the spec to run, in this order.
seeds="0"                                     # Training seeds; each variant is trained once per seed.
train_set=train                               # The recipe's --train_set (names the data variants).
test_sets=""                                  # Speech test sets to decode (default: the recipe's).
nonspeech_test_set=""                         # Non-speech test set (default: the recipe's).
max_test_utts=0                               # > 0: decode a fixed random subset of N utterances per
                                              # set (needs --test_sets and --nonspeech_test_set).
dumpdir=dump                                  # The recipe's dump dir.
expdir=exp                                    # The recipe's experiment dir.
attention_set=dev                             # Dumped set whose first utterance gets a matching-loss
                                              # attention plot per trained variant ("" to skip).
inference_model=valid.acc.ave.pth             # The recipe's --inference_model; a variant that has it
                                              # is not trained again (remove it to retrain).
report=""                                     # Markdown file that receives the ablation tables (default:
                                              # RESULTS.md for conf/ablations.yaml, RESULTS_<spec name>.md for
                                              # another spec, so a debug spec keeps the committed tables).
python=python3                                # Python interpreter (tools/venv through path.sh).
. utils/parse_options.sh
. utils/log.sh

if [ $# -gt 0 ]; then
    [ "$1" = "--" ] || die "unexpected argument '$1': options come first, then -- and options for ./run.sh"
    shift
fi
run_opts=("$@")
{ [ -f path.sh ] && [ -x run.sh ]; } || die "run this from a recipe dir (egs2/<corpus>/asr1, with run.sh and path.sh)"
. ./path.sh
[ -f "${spec}" ] || die "--spec ${spec}: no such file"
if [ -z "${report}" ]; then
    report=RESULTS.md
    [ "${spec}" = conf/ablations.yaml ] || report=RESULTS_$(basename "${spec}" .yaml).md
fi
SECONDS=0

# Optional fixed test subsets (same utterances for every variant).
set_opts=()
if [ "${max_test_utts}" -gt 0 ]; then
    { [ -n "${test_sets}" ] && [ -n "${nonspeech_test_set}" ]; } || die "--max_test_utts needs --test_sets and --nonspeech_test_set"
    _subsets=()
    for dset in ${test_sets} ${nonspeech_test_set}; do
        _src=${dumpdir}/raw/${dset}
        _dst=${dumpdir}/raw/${dset}_abl${max_test_utts}
        [ -f "${_src}/wav.scp" ] || die "${_src} not found: run ./run.sh --stop_stage 8 first"
        if [ ! -f "${_dst}/wav.scp" ]; then
            _n=$(wc -l <"${_src}/wav.scp")
            [ "${_n}" -lt "${max_test_utts}" ] && _n_take=${_n} || _n_take=${max_test_utts}
            utils/subset_data_dir.sh --random "${_n_take}" --seed 0 "${_src}" "${_dst}"  # filters utt2num_samples too
        fi
        _subsets+=("${dset}_abl${max_test_utts}")
    done
    set_opts=(--test_sets "${_subsets[*]:0:${#_subsets[@]}-1}" --nonspeech_test_set "${_subsets[-1]}")
else
    [ -n "${test_sets}" ] && set_opts+=(--test_sets "${test_sets}")
    [ -n "${nonspeech_test_set}" ] && set_opts+=(--nonspeech_test_set "${nonspeech_test_set}")
fi

mkdir -p "${expdir}/ablations"
plan=${expdir}/ablations/plan.tsv
# shellcheck disable=SC2086
${python} -m espnet_speechllm.bin.ablation_plan --spec "${spec}" --tables ${tables} --seeds ${seeds} \
    --out_dir "${expdir}/ablations" --train_set "${train_set}" >"${plan}"
log "$(wc -l <"${plan}") runs planned: ${plan} (per-variant YAMLs in ${expdir}/ablations/conf/)"

# Each step's wall time, appended as it runs (table, variant, seed, step, seconds): the report sums per step the
# longest record, so a rerun that only skips finished work adds nothing to a table's time.
walltime=${expdir}/ablations/walltime.tsv
timed() {  # timed <step> <command...>
    local _step=$1 _start=${SECONDS}
    shift
    "$@"
    printf '%s\t%s\t%s\t%s\t%s\n' "${table}" "${variant}" "${seed}" "${_step}" "$((SECONDS - _start))" >>"${walltime}"
}

n=0
while IFS=$'\t' read -r -u 3 table variant seed tag train_config inference_config inference_tag final_set train data_args; do
    n=$((n + 1))
    log "[${n}] ${table}/${variant} seed ${seed}: ${expdir}/asr_llm_${tag}/${inference_tag}"
    set_final=()
    [ "${final_set}" != "-" ] && set_final=(--final_set "${final_set}")
    stats=${expdir}/stats_abl_${final_set/#-/${train_set}_final}
    if [ "${data_args}" != "-" ]; then
        # The variant's data options, one NUL-terminated argument each (keys checked by ablation_plan): passed
        # on as they are, never read by a shell.
        mapfile -d '' -t data_opts <"${data_args}"
        timed data ./run.sh "${run_opts[@]}" --stage 3 --stop_stage 6 "${data_opts[@]}" "${set_final[@]}"
    fi
    # The runner's own options come last: they win over --run_opts and run.sh's defaults.
    if [ ! -f "${stats}/.done" ]; then
        timed stats ./run.sh "${run_opts[@]}" --stage 8 --stop_stage 8 --train_config "${train_config}" \
            --asr_stats_dir "${stats}" "${set_final[@]}"
    fi
    if [ "${train}" = true ] && [ -f "${expdir}/asr_llm_${tag}/${inference_model}" ]; then
        log "${expdir}/asr_llm_${tag}/${inference_model} exists: training skipped"
    elif [ "${train}" = true ]; then
        timed train ./run.sh "${run_opts[@]}" --stage 9 --stop_stage 10 --train_config "${train_config}" --asr_tag "${tag}" \
            --seed "${seed}" --asr_stats_dir "${stats}" --inference_model "${inference_model}" "${set_final[@]}"
        _png=${expdir}/asr_llm_${tag}/images/matching_attention.png
        if [ -n "${attention_set}" ] && [ ! -f "${_png}" ]; then
            timed attention_plot ${python} -m espnet_speechllm.bin.plot_matching_attention --exp_dir "${expdir}/asr_llm_${tag}" \
                --model_file "${inference_model}" --data_dir "${dumpdir}/raw/${attention_set}" --out "${_png}"
        fi
    fi
    timed decode ./run.sh "${run_opts[@]}" --stage 11 --stop_stage 12 --train_config "${train_config}" --asr_tag "${tag}" \
        --inference_config "${inference_config}" --inference_tag "${inference_tag}" --inference_model "${inference_model}" \
        "${set_final[@]}" "${set_opts[@]}"
done 3<"${plan}"

${python} -m espnet_speechllm.bin.ablation_report --plan "${expdir}/ablations/plan.json" --exp_root "${expdir}" \
    --out "${report}" --command "local/run_ablations.sh ${orig_args}" --walltime "${walltime}"
log "ablation tables written to ${report} [elapsed=${SECONDS}s]"
