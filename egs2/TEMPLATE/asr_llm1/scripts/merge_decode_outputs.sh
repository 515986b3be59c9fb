#!/usr/bin/env bash
# Stage 11: merges the outputs of N decoding jobs, <logdir>/output.<n>/<k>best_recog/{text,token,score,...},
# into <out-dir>/{text,token,score,...} (1-best) and <out-dir>/<k>best_recog/ (k > 1), sorted by utterance.
# Fails when a job's output is missing or utterances of the key files got no hypothesis.
set -euo pipefail
export LC_ALL=C

help_usage="Usage: scripts/merge_decode_outputs.sh <logdir> <nj> <out-dir>"
. utils/parse_options.sh

. "$(dirname "$0")/../utils/log.sh"

if [ $# -ne 3 ]; then
    echo "${help_usage}" >&2
    exit 1
fi
logdir=${1%/}
nj=$2
out=${3%/}
for n in $(seq "${nj}"); do
    [ -f "${logdir}/output.${n}/1best_recog/text" ] ||
        die "${logdir}/output.${n}/1best_recog/text is missing; see ${logdir}/asr_inference.${n}.log"
done
mkdir -p "${out}"
for kdir in "${logdir}"/output.1/*best_recog; do
    k=$(basename "${kdir}")
    if [ "${k}" = 1best_recog ]; then dest=${out}; else dest=${out}/${k}; fi
    mkdir -p "${dest}"
    for f in "${kdir}"/*; do
        name=$(basename "${f}")
        for n in $(seq "${nj}"); do
            [ -f "${logdir}/output.${n}/${k}/${name}" ] || die "${logdir}/output.${n}/${k}/${name} is missing"
            cat "${logdir}/output.${n}/${k}/${name}"
        done | sort -s -k1,1 >"${dest}/${name}"
    done
done
cat "${logdir}"/keys.*.scp | cut -d' ' -f1 | sort >"${out}/.keys"
cut -d' ' -f1 "${out}/text" | sort | comm -23 "${out}/.keys" - >"${out}/.missing"
nmiss=$(wc -l <"${out}/.missing")
nkeys=$(wc -l <"${out}/.keys")
rm -f "${out}/.keys"
if [ "${nmiss}" -gt 0 ]; then
    die "${nmiss} of ${nkeys} utterances have no hypothesis in ${out}/text (e.g. $(head -n1 "${out}/.missing")); see ${logdir}/asr_inference.*.log"
fi
rm -f "${out}/.missing"
log "${out}: merged ${nj} jobs, ${nkeys} utterances ($(awk 'NF == 1' "${out}/text" | wc -l) empty hypotheses)"
