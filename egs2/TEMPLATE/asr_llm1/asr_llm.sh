#!/usr/bin/env bash
# The 13 stages of an LLM-based ASR recipe (speech encoder -> adapter -> LLM), ESPnet egs2 style.
# Run it from a recipe dir (egs2/<corpus>/asr1) through that recipe's run.sh; --help lists the options.
set -euo pipefail

[ -f utils/parse_options.sh ] || { echo "$0: run it from a recipe dir (egs2/<corpus>/asr1) through run.sh" >&2; exit 1; }
. utils/log.sh  # log, die
SECONDS=0
# The command line without --stage/--stop_stage, shell-quoted: exp/<tag>/run.sh repeats it for stage 9.
orig_args=""
_a=("$@")
for ((_i = 0; _i < ${#_a[@]}; _i++)); do
    case "${_a[_i]}" in
        --stage | --stop_stage) _i=$((_i + 1)) ;;
        --stage=* | --stop_stage=*) ;;
        *) orig_args+="$(printf '%q' "${_a[_i]}") " ;;
    esac
done

help_usage="Usage: $0 --train_set <set> --valid_set <set> --test_sets \"<sets>\" --train_config <yaml> [options]

Stages (--stage N --stop_stage M):
   1 data preparation (local/data.sh)            -> data/<set>/{wav.scp,text,utt2spk,spk2utt}
   2 non-speech corpus (MUSAN or sox)            -> data/{nonspeech_train,nonspeech_test,noise_bank}
   3 speed perturbation                          -> data/<train>_sp
   4 noise augmentation from the noise bank      -> data/<train>_sp_noisy
   5 non-speech mixing (empty transcripts)       -> data/<train>_final
   6 dump audio + duration filter                -> dump/raw/<set>
   7 foundation models (local/foundation_models.sh) -> exp/pretrained/{encoder,llm}
   8 collect shape statistics (+ dumped encoder outputs) -> exp/stats_<tag>
   9 training                                    -> exp/asr_llm_<tag>
  10 checkpoint averaging, PEFT adapter export   -> exp/asr_llm_<tag>/{<model>,peft/}
  11 reference reachability check, decoding      -> exp/asr_llm_<tag>/decode_*/<set>/text
  12 scoring (sclite WER, insertions)            -> .../<set>/score_wer/
  13 report                                      -> RESULTS.md (or exp/asr_llm_<tag>/RESULTS.md, --report)
A finished step is skipped (with a log line) unless --force true."

## General
stage=1              # First stage to run.
stop_stage=13        # Last stage to run.
force=false          # Redo finished steps (training itself always resumes from its last checkpoint).
nj=4                 # Parallel jobs for data preparation, dumping and statistics.
inference_nj=2       # Parallel decoding jobs per test set.
ngpu=1               # GPUs for training (0: CPU); decoding jobs use one GPU each when > 0.
num_nodes=1          # Nodes for training, each with --ngpu GPUs (> 1: through espnet2.bin.launch and the
                     # Slurm backend of cmd.sh; docs/scaling.md).
seed=0               # Random seed of augmentation, mixing and training.
python=python3       # Python interpreter (tools/venv through path.sh).
expdir=exp           # Experiment directory.
dumpdir=dump         # Dump directory.

## Data
train_set=""                      # Training set (data/<train_set>).
valid_set=""                      # Validation set.
test_sets=""                      # Test sets, space separated.
nonspeech_train_set=nonspeech_train  # Non-speech training data (stage 2 output, mixed in at stage 5).
nonspeech_test_set=nonspeech_test    # Non-speech test set, decoded and scored for insertions ("" to skip).
noise_bank=noise_bank             # Noise bank for augmentation (stage 2 output).
local_data_opts=""                # Options passed to local/data.sh.
foundation_opts=""                # Options passed to local/foundation_models.sh (stage 7).

## Non-speech corpus (stage 2)
nonspeech_source=musan  # musan: the MUSAN corpus at --musan_dir; sox: synthesized with sox.
musan_dir=""            # MUSAN directory (with noise/ and music/).
nonspeech_opts=""       # Extra options of espnet_speechllm.bin.make_nonspeech (sizes, chunk lengths).

## Augmentation (stages 3-5)
speed_perturb_factors="0.9 1.0 1.1"  # sox speed factors ("" skips stage 3).
noise_aug_ratio=0.3                  # Fraction of utterances that get an extra noisy copy (0 skips stage 4).
noise_snr_range="5 20"               # SNR range (dB) of the noisy copies.
nonspeech_ratio=0.05                 # Non-speech utterances added, as a fraction of the speech utterances.
nonspeech_edges_ratio=0              # Fraction of speech utterances that get a copy with non-speech before and
                                     # after (transcript kept), so non-speech around speech does not teach "empty".
nonspeech_edge_seconds="0.5 3"       # Length range (s) of each such edge.
final_set=""                         # Name of the stage-5 training set (default: <train_set>_final); ablations
                                     # give each data variant its own.

## Dump (stage 6)
audio_format=wav      # Audio format inside the dump arks: wav or flac (about half the disk).
min_wav_duration=0.1  # Drop shorter training/validation utterances (seconds).
max_wav_duration=20   # Drop longer training/validation utterances (seconds).
min_test_wav_duration=0.025  # Drop shorter test utterances (seconds): the encoder's minimum input, its receptive
                             # field (400 samples for HuBERT, WavLM and wav2vec2). Test sets have no upper bound.

## Foundation models (stage 7)
pretrained_dir=""  # Where encoder/ and llm/ go (default: <expdir>/pretrained).

## Training (stages 8-10)
train_config=""                   # Training YAML (one file = one experiment).
asr_tag=""                        # Experiment name (default: train YAML name without .yaml): exp/asr_llm_<tag>.
asr_stats_dir=""                  # Shape statistics dir (default: <expdir>/stats_<tag>).
train_args=""                     # Extra arguments of espnet_speechllm.bin.speechllm_train.
inference_model=valid.acc.ave.pth  # Model file used for decoding.

## Decoding and scoring (stages 11-13)
inference_config=""  # Decoding YAML.
inference_tag=""     # Decoding dir name (default: <inference YAML name>_<model name>, with a decode_ prefix
                     # unless the YAML name has one: conf/decode_beam4.yaml -> decode_beam4_valid.acc.ave).
inference_args=""    # Extra arguments of espnet_speechllm.bin.speechllm_inference.
report=""            # Report file of stage 13 (default: RESULTS.md when it is new or already reports this
                     # experiment, else <exp>/RESULTS.md: a debug or check run never overwrites the report of
                     # another experiment, such as the committed one of the default configuration).

. utils/parse_options.sh
nl=$'\n'  # a newline, for multi-line messages

if [ $# -ne 0 ]; then
    die "unexpected arguments: $* (options are --name value; see --help)"
fi
{ [ -f path.sh ] && [ -f cmd.sh ]; } || die "run this from a recipe dir (egs2/<corpus>/asr1, with path.sh and cmd.sh)"
. ./path.sh
. ./cmd.sh

# ------------------------------------------------------------------------------------------- checks
runs() { [ "${stage}" -le "$1" ] && [ "${stop_stage}" -ge "$1" ]; }
[ -n "${train_set}" ] || die "--train_set is required"
[ -n "${valid_set}" ] || die "--valid_set is required"
[ -n "${test_sets}" ] || die "--test_sets is required"
if [ -z "${asr_tag}" ] && [ -n "${train_config}" ]; then
    asr_tag=$(basename "${train_config}" .yaml)
fi
for s in 8 9 10 11 12 13; do
    if runs "${s}"; then
        [ -n "${train_config}" ] || die "stage ${s} needs --train_config"
        [ -f "${train_config}" ] || die "--train_config ${train_config}: no such file"
        break
    fi
done
for s in 11 12 13; do
    if runs "${s}"; then
        [ -n "${inference_config}" ] || die "stage ${s} needs --inference_config"
        [ -f "${inference_config}" ] || die "--inference_config ${inference_config}: no such file"
        break
    fi
done
case "${nonspeech_source}" in musan | sox) ;; *) die "--nonspeech_source must be musan or sox, got '${nonspeech_source}'" ;; esac

# Names of the derived sets and dirs.
if [ -n "${speed_perturb_factors}" ]; then sp_set=${train_set}_sp; else sp_set=${train_set}; fi
if awk -v r="${noise_aug_ratio}" 'BEGIN { exit !(r > 0) }'; then noisy_set=${sp_set}_noisy; else noisy_set=${sp_set}; fi
if awk -v r="${nonspeech_edges_ratio}" 'BEGIN { exit !(r > 0) }'; then edges_set=${noisy_set}_edges; else edges_set=${noisy_set}; fi
final_set=${final_set:-${train_set}_final}
pretrained_dir=${pretrained_dir:-${expdir}/pretrained}
asr_stats_dir=${asr_stats_dir:-${expdir}/stats_${asr_tag}}
asr_exp=${expdir}/asr_llm_${asr_tag}
if [ -z "${inference_tag}" ] && [ -n "${inference_config}" ]; then
    inference_tag=$(basename "${inference_config}" .yaml)
    case "${inference_tag}" in decode | decode_*) ;; *) inference_tag=decode_${inference_tag} ;; esac
    inference_tag+=_$(basename "${inference_model}" .pth)
fi
# uniq_words WORDS...: the space-separated words of all arguments, each once, in order.
uniq_words() { printf '%s\n' "$*" | tr -s ' \t' '\n' | awk 'NF && !seen[$0]++' | tr '\n' ' ' | sed 's/ $//'; }
eval_sets=$(uniq_words "${test_sets}" "${nonspeech_test_set}")
stage_logdir=${expdir}/logdir

# ------------------------------------------------------------------------------------------ helpers
# is_done <marker> <settings> [<what>]: 0 (skip) when <marker> records <settings>; 1 (run) when there is no
# marker or --force; dies when the marker records other settings, so stale outputs are never reused. Settings
# hold the options and the content fingerprints of the inputs (fingerprint below), one per line.
is_done() {
    local marker=$1 settings=$2 what=${3:-$(dirname "$1")}
    if ${force} || [ ! -f "${marker}" ]; then
        return 1
    fi
    if [ "$(cat "${marker}")" != "${settings}" ]; then
        die "${what} was made with other settings or inputs (then: <, now: >):${nl}$(diff <(cat "${marker}") <(printf '%s\n' "${settings}") | grep '^[<>]' | sed 's/^/    /')${nl}  to remake it: --stage ${current_stage} --stop_stage ${current_stage} --force true (then rerun the later stages with --force true too)"
    fi
    log "${what} is done; skipping (--force true remakes it)"
    return 0
}

# fingerprint <path>...: one line per input with its content (config hash; model size, mtime and hash of the
# first MB; a data dir's key files): what a done-marker records besides the options.
fingerprint() {
    ${python} -m espnet_speechllm.bin.fingerprint "$@"
}

# prepare_out_dir <dir>: a dir about to be (re)made; refuses to overwrite one without a done-marker.
prepare_out_dir() {
    local dir=$1
    if [ -e "${dir}" ]; then
        if ! ${force} && [ ! -f "${dir}/.done" ]; then
            die "${dir} exists but has no done-marker (made by hand, or by an interrupted run); to overwrite it, rerun this stage with --force true (--stage ${current_stage} --stop_stage ${current_stage} --force true)"
        fi
        rm -rf "${dir}"
    fi
}

require_data() {
    local dir
    for dir in "$@"; do
        [ -f "${dir}/wav.scp" ] || die "${dir}/wav.scp not found: run the stage that makes it first (see --help)"
    done
}

# run_logged <log> <command...>: runs the command, its output shown and appended to <log>.
run_logged() {
    local logfile=$1
    shift
    mkdir -p "$(dirname "${logfile}")"
    log "log: ${logfile}"
    echo "# $(date '+%Y-%m-%dT%H:%M:%S') $*" >>"${logfile}"
    "$@" 2>&1 | tee -a "${logfile}"
}

min() {
    local m=$1 x
    for x in "$@"; do [ "${x}" -lt "${m}" ] && m=${x}; done
    echo "${m}"
}

# write_resume_script <path>: the exp dir's run.sh, which resumes stage 9 with this command line. Written to a
# temporary file and renamed over the old one (bash reads a running script as it goes: an in-place rewrite
# would make a running run.sh continue at its old offset in the new text), and left alone when it is the
# script that started this run.
write_resume_script() {
    local path=$1 tmp
    if [ "${ASR_LLM_RESUME_SCRIPT:-}" = "$(readlink -f "${path}")" ]; then
        return 0
    fi
    tmp=$(mktemp "${path}.XXXXXX")
    {
        echo "#!/usr/bin/env bash"
        echo "# Resumes the training of this experiment (stage 9 of asr_llm.sh); extra arguments are passed on."
        echo "cd $(printf '%q' "${PWD}") || exit 1"
        echo "export ASR_LLM_RESUME_SCRIPT=$(printf '%q' "$(readlink -f "${path}")")"
        echo "exec ./asr_llm.sh ${orig_args}--stage 9 --stop_stage 9 \"\$@\""
    } >"${tmp}"
    chmod +x "${tmp}"
    if cmp -s "${tmp}" "${path}"; then
        rm -f "${tmp}"
    else
        mv -f "${tmp}" "${path}"
    fi
}

stage_t0=0
current_stage=0
stage_begin() { stage_t0=${SECONDS}; current_stage=$1; }
stage_end() { log "Stage $1 finished in $((SECONDS - stage_t0)) s"; }

# ------------------------------------------------------------------------------------------- stages
if runs 1; then
    stage_begin 1
    log "Stage 1: data preparation: local/data.sh ${local_data_opts} -> data/{${train_set},${valid_set},${test_sets// /,}}"
    _opts=()
    if ${force}; then _opts=(--force true); fi
    # shellcheck disable=SC2086  # local_data_opts: options, one word each
    run_logged "${stage_logdir}/stage1_data.log" local/data.sh ${local_data_opts} "${_opts[@]}"
    for dset in ${train_set} ${valid_set} ${test_sets}; do
        utils/validate_data_dir.sh "data/${dset}"
    done
    stage_end 1
fi

if runs 2; then
    stage_begin 2
    log "Stage 2: non-speech corpus (${nonspeech_source}) -> data/{${nonspeech_train_set},${nonspeech_test_set:-nonspeech_test},${noise_bank}}"
    if [ "${nonspeech_source}" = musan ]; then
        _opts=(--musan_dir "${musan_dir}")
    else
        require_data "data/${train_set}"
        _opts=(--speech_scp "data/${train_set}/wav.scp" --audio_dir downloads/nonspeech_sox --nj "${nj}")
    fi
    # shellcheck disable=SC2086
    run_logged "${stage_logdir}/stage2_make_nonspeech.log" \
        ${python} -m espnet_speechllm.bin.make_nonspeech --source "${nonspeech_source}" --data_dir data \
        --train_name "${nonspeech_train_set}" --test_name "${nonspeech_test_set:-nonspeech_test}" \
        --bank_name "${noise_bank}" --seed "${seed}" --force "${force}" "${_opts[@]}" ${nonspeech_opts}
    stage_end 2
fi

if runs 3; then
    stage_begin 3
    if [ -z "${speed_perturb_factors}" ]; then
        log "Stage 3: speed perturbation: skipped (--speed_perturb_factors \"\")"
    else
        log "Stage 3: speed perturbation (${speed_perturb_factors}): data/${train_set} -> data/${sp_set}"
        require_data "data/${train_set}"
        _settings="factors=${speed_perturb_factors} src=data/${train_set}"$'\n'"$(fingerprint "data/${train_set}")"
        if ! is_done "data/${sp_set}/.done" "${_settings}"; then
            prepare_out_dir "data/${sp_set}"
            _tmp=data/${sp_set}.parts
            rm -rf "${_tmp}"
            _dirs=()
            for factor in ${speed_perturb_factors}; do
                if awk -v f="${factor}" 'BEGIN { exit !(f == 1.0) }'; then
                    _dirs+=("data/${train_set}")
                else
                    utils/perturb_data_dir_speed.sh "${factor}" "data/${train_set}" "${_tmp}/sp${factor}"
                    _dirs+=("${_tmp}/sp${factor}")
                fi
            done
            utils/combine_data.sh "data/${sp_set}" "${_dirs[@]}"
            rm -rf "${_tmp}"
            echo "${_settings}" >"data/${sp_set}/.done"
        fi
    fi
    stage_end 3
fi

if runs 4; then
    stage_begin 4
    if [ "${noisy_set}" = "${sp_set}" ]; then
        log "Stage 4: noise augmentation: skipped (--noise_aug_ratio ${noise_aug_ratio})"
    else
        log "Stage 4: noise augmentation (ratio ${noise_aug_ratio}, SNR ${noise_snr_range} dB): data/${sp_set} + data/${noise_bank} -> data/${noisy_set}"
        require_data "data/${sp_set}" "data/${noise_bank}"
        run_logged "${stage_logdir}/stage4_add_noise.log" \
            ${python} -m espnet_speechllm.bin.add_noise --data_dir "data/${sp_set}" --noise_dir "data/${noise_bank}" \
            --out_dir "data/${noisy_set}" --audio_dir "${dumpdir}/augment/${noisy_set}" --ratio "${noise_aug_ratio}" \
            --snr_range "${noise_snr_range}" --seed "${seed}" --nj "${nj}" --force "${force}"
        utils/validate_data_dir.sh --check_files false "data/${noisy_set}"
    fi
    stage_end 4
fi

if runs 5; then
    stage_begin 5
    log "Stage 5: non-speech mixing (ratio ${nonspeech_ratio}, edges ${nonspeech_edges_ratio}): data/${noisy_set} + data/${nonspeech_train_set} -> data/${final_set}"
    require_data "data/${noisy_set}" "data/${nonspeech_train_set}"
    if [ "${edges_set}" != "${noisy_set}" ]; then
        run_logged "${stage_logdir}/stage5_nonspeech_edges.log" \
            ${python} -m espnet_speechllm.bin.add_noise --mode edges --data_dir "data/${noisy_set}" \
            --noise_dir "data/${nonspeech_train_set}" --out_dir "data/${edges_set}" --prefix edges- \
            --audio_dir "${dumpdir}/augment/${edges_set}" --ratio "${nonspeech_edges_ratio}" \
            --edge_seconds "${nonspeech_edge_seconds}" --seed "${seed}" --nj "${nj}" --force "${force}"
    fi
    _settings="ratio=${nonspeech_ratio} seed=${seed} speech=data/${edges_set} nonspeech=data/${nonspeech_train_set}"
    _settings+=$'\n'"$(fingerprint "data/${edges_set}" "data/${nonspeech_train_set}")"
    if ! is_done "data/${final_set}/.done" "${_settings}"; then
        prepare_out_dir "data/${final_set}"
        scripts/mix_nonspeech.sh --ratio "${nonspeech_ratio}" --seed "${seed}" \
            "data/${edges_set}" "data/${nonspeech_train_set}" "data/${final_set}"
        echo "${_settings}" >"data/${final_set}/.done"
    fi
    stage_end 5
fi

if runs 6; then
    stage_begin 6
    log "Stage 6: dump audio + filter: data/{${final_set},${valid_set},${eval_sets// /,}} -> ${dumpdir}/raw/"
    for dset in $(uniq_words "${final_set}" "${valid_set}" "${eval_sets}"); do
        require_data "data/${dset}"
        if [ "${dset}" = "${final_set}" ] || [ "${dset}" = "${valid_set}" ]; then
            _limits=(--min_wav_duration "${min_wav_duration}" --max_wav_duration "${max_wav_duration}")
        else
            _limits=(--min_wav_duration "${min_test_wav_duration}" --max_wav_duration inf)  # only what cannot be decoded
        fi
        # shellcheck disable=SC2086  # python: a command, possibly with options
        run_logged "${stage_logdir}/stage6_dump_${dset}.log" \
            ${python} -m espnet_speechllm.bin.dump_audio --data_dir "data/${dset}" --out_dir "${dumpdir}/raw/${dset}" \
            "${_limits[@]}" --audio_format "${audio_format}" --nj "${nj}" --force "${force}"
    done
    stage_end 6
fi

if runs 7; then
    stage_begin 7
    log "Stage 7: foundation models: local/foundation_models.sh -> ${pretrained_dir}/{encoder,llm}"
    _opts=()
    if ${force}; then _opts=(--force true); fi
    # shellcheck disable=SC2086  # foundation_opts: options, one word each
    run_logged "${stage_logdir}/stage7_foundation_models.log" local/foundation_models.sh --out "${pretrained_dir}" "${_opts[@]}" ${foundation_opts}
    stage_end 7
fi

train_dir=${dumpdir}/raw/${final_set}
valid_dir=${dumpdir}/raw/${valid_set}
# A training run whose encoder is "precomputed" (in its YAML or in --train_args) trains on the outputs of its
# frozen source encoder, dumped once by stage 8 (espnet_speechllm/encoder/precomputed.py); decoding still reads
# audio. Python answers, from the YAML and the extra arguments as training reads them; stages 8 and 9 ask.
train_speech="${train_dir}/wav.scp,speech,audio"
valid_speech="${valid_dir}/wav.scp,speech,audio"
feats_dir=""
if { runs 8 || runs 9; } && [ -f "${train_config}" ]; then
    # What stage 8 dumps once for training to read: a frozen encoder's outputs, the waveform CNN's (the
    # transformer still fine-tunes in the loop), or nothing (training reads audio).
    # shellcheck disable=SC2086  # python: a command; train_args: split into words as stage 9 passes them
    _dumped=$(${python} -m espnet_speechllm.bin.which_encoder --dump_dir true --train_config "${train_config}" -- ${train_args})
    if [ "${_dumped:-none}" != none ]; then
        feats_dir=${dumpdir}/${_dumped}
        train_speech="${feats_dir}/${final_set}/feats.scp,speech,kaldi_ark"
        valid_speech="${feats_dir}/${valid_set}/feats.scp,speech,kaldi_ark"
    fi
fi

if runs 8; then
    stage_begin 8
    log "Stage 8: collect stats: ${train_dir}, ${valid_dir} -> ${asr_stats_dir}"
    require_data "${train_dir}" "${valid_dir}"
    if [ -n "${feats_dir}" ]; then
        _device=cpu
        [ "${ngpu}" -gt 0 ] && _device=cuda
        for dset in ${final_set} ${valid_set}; do
            log "dumping encoder features: ${dumpdir}/raw/${dset} -> ${feats_dir}/${dset}"
            run_logged "${feats_dir}/logdir/dump_${dset}.log" \
                ${python} -m espnet_speechllm.bin.dump_encoder_feats --train_config "${train_config}" \
                --data_dir "${dumpdir}/raw/${dset}" --out_dir "${feats_dir}/${dset}" --device "${_device}" --force "${force}"
        done
    fi
    _settings="config=${train_config} train=${train_dir} valid=${valid_dir}"
    _settings+=$'\n'"$(fingerprint "${train_config}" "${train_dir}" "${valid_dir}")"
    if ! is_done "${asr_stats_dir}/.done" "${_settings}"; then
        prepare_out_dir "${asr_stats_dir}"
        _logdir=${asr_stats_dir}/logdir
        mkdir -p "${_logdir}"
        _nj=$(min "${nj}" "$(wc -l <"${train_dir}/wav.scp")" "$(wc -l <"${valid_dir}/wav.scp")")
        _train_keys=()
        _valid_keys=()
        for n in $(seq "${_nj}"); do
            _train_keys+=("${_logdir}/train.${n}.scp")
            _valid_keys+=("${_logdir}/valid.${n}.scp")
        done
        utils/split_scp.sh "${train_dir}/wav.scp" "${_train_keys[@]}"
        utils/split_scp.sh "${valid_dir}/wav.scp" "${_valid_keys[@]}"
        log "${_nj} jobs; logs: ${_logdir}/stats.*.log"
        ${train_cmd} JOB=1:"${_nj}" "${_logdir}/stats.JOB.log" \
            ${python} -m espnet_speechllm.bin.speechllm_train \
            --collect_stats true \
            --config "${train_config}" \
            --train_data_path_and_name_and_type "${train_speech}" \
            --train_data_path_and_name_and_type "${train_dir}/text,text,transcript" \
            --valid_data_path_and_name_and_type "${valid_speech}" \
            --valid_data_path_and_name_and_type "${valid_dir}/text,text,transcript" \
            --train_shape_file "${_logdir}/train.JOB.scp" \
            --valid_shape_file "${_logdir}/valid.JOB.scp" \
            --output_dir "${_logdir}/stats.JOB"
        _opts=()
        for n in $(seq "${_nj}"); do _opts+=(--input_dir "${_logdir}/stats.${n}"); done
        # shellcheck disable=SC2086  # python: a command, possibly with options
        ${python} -m espnet2.bin.aggregate_stats_dirs "${_opts[@]}" --output_dir "${asr_stats_dir}"
        echo "${_settings}" >"${asr_stats_dir}/.done"
    fi
    stage_end 8
fi

if runs 9; then
    stage_begin 9
    log "Stage 9: training: ${train_dir} (config ${train_config}) -> ${asr_exp}"
    require_data "${train_dir}" "${valid_dir}"
    for f in speech_shape text_shape; do
        [ -f "${asr_stats_dir}/train/${f}" ] || die "${asr_stats_dir}/train/${f} not found: run stage 8 first"
    done
    ${force} && log "--force true does not restart training: it resumes from ${asr_exp}; remove that dir (or use another --asr_tag) to start over"
    mkdir -p "${asr_exp}"
    write_resume_script "${asr_exp}/run.sh"
    log "log: ${asr_exp}/train.log (appended to; follow it with: tail -f ${asr_exp}/train.log); resume with ${asr_exp}/run.sh"
    printf '# ===== stage 9 launch at %s: %s =====\n' "$(date '+%Y-%m-%d %H:%M:%S')" "${asr_exp}/run.sh" >>"${asr_exp}/train.log"
    # [scaling] One process per GPU (ESPnet's DDP) when --ngpu > 1 ("--multiprocessing_distributed true" is a
    # no-op for one GPU or CPU); several nodes go through espnet2.bin.launch, which submits one task per node
    # with ${train_cmd} and starts them with srun.
    read -r -a _launch <<<"${train_cmd}"  # a command, possibly with options
    _launch+=(--gpu "${ngpu}" "${asr_exp}/train.log")
    if [ "${num_nodes}" -gt 1 ]; then
        read -r -a _launch <<<"${python}"
        _launch+=(-m espnet2.bin.launch --cmd "${train_cmd}" --log "${asr_exp}/train.log" --ngpu "${ngpu}"
                 --num_nodes "${num_nodes}" --init_file_prefix "${asr_exp}/.dist_init_" --multiprocessing_distributed true --)
    fi
    # shellcheck disable=SC2086
    "${_launch[@]}" \
        ${python} -m espnet_speechllm.bin.speechllm_train \
        --config "${train_config}" \
        --use_preprocessor true \
        --train_data_path_and_name_and_type "${train_speech}" \
        --train_data_path_and_name_and_type "${train_dir}/text,text,transcript" \
        --valid_data_path_and_name_and_type "${valid_speech}" \
        --valid_data_path_and_name_and_type "${valid_dir}/text,text,transcript" \
        --train_shape_file "${asr_stats_dir}/train/speech_shape" \
        --train_shape_file "${asr_stats_dir}/train/text_shape" \
        --valid_shape_file "${asr_stats_dir}/valid/speech_shape" \
        --valid_shape_file "${asr_stats_dir}/valid/text_shape" \
        --output_dir "${asr_exp}" \
        --resume true \
        --ngpu "${ngpu}" \
        --seed "${seed}" \
        --multiprocessing_distributed true \
        ${train_args}
    stage_end 9
fi

if runs 10; then
    stage_begin 10
    log "Stage 10: checkpoint averaging + PEFT export: ${asr_exp} -> ${asr_exp}/${inference_model}, ${asr_exp}/peft"
    [ -d "${asr_exp}" ] || die "${asr_exp} not found: run stage 9 first"
    # The marker records the model it was made from: a model changed by more training is not skipped.
    _marker=${asr_exp}/logdir/finalize_model.done
    _finalize_settings() { printf 'model=%s\n' "${inference_model}"; fingerprint "${asr_exp}/config.yaml" "${asr_exp}/${inference_model}"; }
    if ! { [ -f "${asr_exp}/${inference_model}" ] && is_done "${_marker}" "$(_finalize_settings)" "${asr_exp}/${inference_model} + peft/ (stage 10)"; }; then
        # The stage runs when its marker is missing or records another model (or with --force true): an existing
        # peft/ is then not known to match the model, so it is always rewritten.
        # shellcheck disable=SC2086  # python: a command, possibly with options
        run_logged "${asr_exp}/logdir/finalize_model.log" \
            ${python} -m espnet_speechllm.bin.finalize_model --exp_dir "${asr_exp}" --inference_model "${inference_model}" \
            --force true
        _finalize_settings >"${_marker}"
    fi
    stage_end 10
fi

# decoding jobs get one GPU each
_decode_ngpu=0
[ "${ngpu}" -gt 0 ] && _decode_ngpu=1

# check_reachability <set> <data dir> <log dir>: can the decoding config produce the set's references at all
# (n-gram constraints, token budgets)? Warns, with the log, when too many cannot be produced; never stops.
check_reachability() {
    local dset=$1 data=$2 logdir=$3 opts=()
    if [ ! -f "${data}/text" ]; then
        log "WARNING: ${data}/text not found: references of ${dset} not checked against ${inference_config}"
        return 0
    fi
    [ -f "${data}/utt2num_samples" ] && opts=(--utt2num_samples "${data}/utt2num_samples")
    if ${python} -m espnet_speechllm.bin.check_decode_reachability --train_config "${asr_exp}/config.yaml" \
        --decode_config "${inference_config}" --text "${data}/text" "${opts[@]}" \
        --output_json "${logdir}/reachability.json" >"${logdir}/reachability.log" 2>&1; then
        log "${dset}: $(grep -o 'reachable: .*' "${logdir}/reachability.log" | tail -n 1) references under ${inference_config}"
    else
        log "WARNING: ${dset}: $(grep 'ERROR' "${logdir}/reachability.log" | tail -n 1 | sed 's/.*ERROR: //')"
        log "WARNING: see ${logdir}/reachability.log; decoding anyway"
    fi
}

# decode_settings <set>: what the hypotheses of a test set are decoded from (options + content of the decoding
# YAML, the model, its config and the dumped set); stage 11 records it, stages 12 and 13 check it.
decode_settings() {
    printf 'config=%s model=%s data=%s args=%s\n' "${inference_config}" "${asr_exp}/${inference_model}" \
        "${dumpdir}/raw/$1" "${inference_args}"
    fingerprint "${inference_config}" "${asr_exp}/config.yaml" "${asr_exp}/${inference_model}" "${dumpdir}/raw/$1"
}

# check_decoded <set> <decode dir> [<score marker>]: dies unless the hypotheses (and, given a score marker,
# the scores) of <set> were made from the current model, decoding YAML and data.
check_decoded() {
    local dset=$1 dir=$2 score_marker=${3:-} now
    now=$(decode_settings "${dset}")
    if [ ! -f "${dir}/.done" ] || [ "$(cat "${dir}/.done")" != "${now}" ]; then
        die "${dir}: its hypotheses were not decoded from the current inputs (then: <, now: >):${nl}$( (diff <(cat "${dir}/.done" 2>/dev/null) <(printf '%s\n' "${now}") || true) | grep '^[<>]' | sed 's/^/    /')${nl}  decode again: --stage 11 --stop_stage 13 --force true"
    fi
    if [ -n "${score_marker}" ] && [ "$(cat "${score_marker}" 2>/dev/null)" != "${now}"$'\n'"$(fingerprint "${dir}/text")" ]; then
        die "${dir}/score_wer does not score the current hypotheses of ${dset}: rerun --stage 12 --stop_stage 13"
    fi
}

if runs 11; then
    stage_begin 11
    log "Stage 11: decoding: ${dumpdir}/raw/{${eval_sets// /,}} -> ${asr_exp}/${inference_tag}/"
    [ -f "${asr_exp}/${inference_model}" ] || die "${asr_exp}/${inference_model} not found: run stage 10 first"
    for dset in ${eval_sets}; do
        _data=${dumpdir}/raw/${dset}
        _dir=${asr_exp}/${inference_tag}/${dset}
        _logdir=${_dir}/logdir
        require_data "${_data}"
        _settings=$(decode_settings "${dset}")
        if is_done "${_dir}/.done" "${_settings}"; then
            continue
        fi
        prepare_out_dir "${_dir}"
        mkdir -p "${_logdir}"
        check_reachability "${dset}" "${_data}" "${_logdir}"
        _nj=$(min "${inference_nj}" "$(wc -l <"${_data}/wav.scp")")
        _keys=()
        for n in $(seq "${_nj}"); do _keys+=("${_logdir}/keys.${n}.scp"); done
        utils/split_scp.sh "${_data}/wav.scp" "${_keys[@]}"
        # CPU jobs share this machine's cores: torch's default of one thread per core in each job
        # oversubscribes them (several times slower); a GPU job needs one.
        _threads=1
        [ "${_decode_ngpu}" -eq 0 ] && _threads=$(( $(nproc) / _nj > 1 ? $(nproc) / _nj : 1 ))
        log "decoding ${dset}: ${_nj} jobs, ${_threads} CPU thread(s) each; logs: ${_logdir}/asr_inference.*.log"
        # shellcheck disable=SC2086
        ${decode_cmd} --gpu "${_decode_ngpu}" JOB=1:"${_nj}" "${_logdir}/asr_inference.JOB.log" \
            ${python} -m espnet_speechllm.bin.speechllm_inference \
            --num_threads "${_threads}" \
            --config "${inference_config}" \
            --train_config "${asr_exp}/config.yaml" \
            --model_file "${asr_exp}/${inference_model}" \
            --data_path_and_name_and_type "${_data}/wav.scp,speech,audio" \
            --key_file "${_logdir}/keys.JOB.scp" \
            --output_dir "${_logdir}/output.JOB" \
            --ngpu "${_decode_ngpu}" \
            ${inference_args}
        scripts/merge_decode_outputs.sh "${_logdir}" "${_nj}" "${_dir}"
        echo "${_settings}" >"${_dir}/.done"
    done
    stage_end 11
fi

if runs 12; then
    stage_begin 12
    log "Stage 12: scoring: ${asr_exp}/${inference_tag}/{${eval_sets// /,}}/text -> .../score_wer/"
    for dset in ${eval_sets}; do
        _dir=${asr_exp}/${inference_tag}/${dset}
        [ -f "${_dir}/text" ] || die "${_dir}/text not found: run stage 11 first"
        check_decoded "${dset}" "${_dir}"  # never score the hypotheses of another model or decoding config
        _opts=()
        if [ "${dset}" = "${nonspeech_test_set}" ]; then _opts=(--nonspeech true); fi
        # shellcheck disable=SC2086
        run_logged "${_dir}/logdir/score_wer.log" \
            ${python} -m espnet_speechllm.bin.score_wer \
            --ref_text "${dumpdir}/raw/${dset}/text" \
            --hyp_text "${_dir}/text" \
            --utt2num_samples "${dumpdir}/raw/${dset}/utt2num_samples" \
            --out_dir "${_dir}/score_wer" "${_opts[@]}"
        printf '%s\n' "$(decode_settings "${dset}")" "$(fingerprint "${_dir}/text")" >"${_dir}/score_wer/.done"
    done
    # shellcheck disable=SC2086
    scripts/show_results.sh "${asr_exp}/${inference_tag}" ${eval_sets}
    stage_end 12
fi

if runs 13; then
    stage_begin 13
    if [ -z "${report}" ]; then
        report=RESULTS.md
        if [ -f RESULTS.md ] && ! grep -qxF "## ${asr_exp}" RESULTS.md; then
            report=${asr_exp}/RESULTS.md
            log "RESULTS.md reports another experiment: this report goes to ${report} (--report RESULTS.md to replace it)"
        fi
    fi
    log "Stage 13: report: ${asr_exp} -> ${report}"
    for dset in ${eval_sets}; do
        _dir=${asr_exp}/${inference_tag}/${dset}
        [ -d "${_dir}" ] && check_decoded "${dset}" "${_dir}" "${_dir}/score_wer/.done"
    done
    ${python} -m espnet_speechllm.bin.make_report --exp_dir "${asr_exp}" --out "${report}" --config_file "${train_config}" \
        --dump_dir "${dumpdir}/raw"
    stage_end 13
fi

log "Successfully finished. [elapsed=${SECONDS}s]"
