"""Building the synthetic corpus of the synth_llm recipe (stage 1): the planned utterances (datagen/corpus_plan.py)
spoken by espeak-ng, with noise or non-speech edges where planned, written as Kaldi data dirs, plus the LLM text
pool and a summary. ``bin/synth_corpus.py``'s --help lists the outputs."""
import json
import logging
import os
import random
import shutil
import subprocess
import time
from typing import Dict

import numpy as np
import soundfile as sf

from espnet_speechllm.data.audio_io import mix_at_snr, to_float, write_wav
from espnet_speechllm.data.kaldi_dir import DataDir, DoneMarker, write_data_dir
from espnet_speechllm.datagen import espeak, nonspeech, sentences
from espnet_speechllm.datagen.corpus_plan import SETS, Utt, plan_set
from espnet_speechllm.datagen.progress import run_pool

logger = logging.getLogger(__name__)

TEST_OTHER_SNR = (5.0, 20.0)
EDGE_SECONDS = (0.5, 3.0)


def make_utt(u: Utt) -> None:
    if u.kind == "plain":
        espeak.synthesize(u.text, u.path, u.voice, u.rate, u.pitch, u.amplitude)
        return
    r = random.Random(u.seed)
    tmp = u.path + ".parts"
    os.makedirs(tmp, exist_ok=True)
    try:
        speech = os.path.join(tmp, "speech.wav")
        espeak.synthesize(u.text, speech, u.voice, u.rate, u.pitch, u.amplitude)
        if u.kind == "noisy":
            x, rate = sf.read(speech, dtype="int16")
            noise_path = os.path.join(tmp, "noise.wav")
            kind = r.choice(nonspeech.NOISE_KINDS)
            nonspeech.make_nonspeech(noise_path, kind, len(x) / rate + 0.5, r, level_db=-3.0)
            noise, _ = sf.read(noise_path, dtype="int16")
            snr = round(r.uniform(*TEST_OTHER_SNR), 1)
            mix, _ = mix_at_snr(to_float(x), to_float(noise), snr, np.random.default_rng(r.getrandbits(32)))
            write_wav(u.path, mix, rate)
            u.info = {"noise": kind, "snr_db": snr}
        elif u.kind == "edges":
            parts = []
            for side in ("before", "after"):
                kind = nonspeech.random_kind(r)
                dur = round(r.uniform(*EDGE_SECONDS), 2)
                part = os.path.join(tmp, f"{side}.wav")
                nonspeech.make_nonspeech(part, kind, dur, r, speech_entry=speech)
                parts.append(part)
                u.info[side] = {"kind": kind, "seconds": dur}
            proc = subprocess.run(["sox", "-V1", parts[0], speech, parts[1], u.path], capture_output=True)
            if proc.returncode != 0:
                raise RuntimeError(f"sox could not concatenate {parts[0]} {speech} {parts[1]}: "
                                   f"{proc.stderr.decode('utf-8', 'replace').strip()}")
        else:
            raise ValueError(f"unknown utterance kind {u.kind}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def synth_corpus(data_dir: str, audio_dir: str, sizes: Dict[str, int], seed: int = 0, nj: int = 2,
                 force: bool = False) -> None:
    """Makes the corpus of ``sizes`` (datagen/corpus_plan.py's set_sizes); skips one done with these settings."""
    start = time.time()
    audio_dir = os.path.abspath(audio_dir)
    local = os.path.join(data_dir, "local")
    settings = dict(sizes=sizes, seed=seed, audio_dir=audio_dir, version=1)
    marker = DoneMarker(os.path.join(local, ".synth_corpus.done"), settings, force=force,
                        what=f"the synthetic corpus in {data_dir}")
    if marker.start([os.path.join(data_dir, s) for s in SETS] + [os.path.join(local, "lm_text.txt")]):
        return
    espeak.check_tools()
    seen = espeak.voices(espeak.SEEN_LANGUAGES, espeak.SEEN_VARIANTS)
    unseen = espeak.voices(espeak.UNSEEN_LANGUAGES, espeak.UNSEEN_VARIANTS)
    espeak.check_voices(seen + unseen)

    n_test = sizes["test_clean"] + sizes["test_other"] + sizes["test_nonspeech_edges"]
    pools = sentences.make_pools({"test": n_test, "dev": sizes["dev"], "train": sizes["train"],
                                  "pretrain_encoder": sizes["pretrain_encoder"], "lm_text": sizes["lm_text"]},
                                 seed=seed)
    test = pools["test"]
    a, b = sizes["test_clean"], sizes["test_clean"] + sizes["test_other"]
    texts = {"train": pools["train"], "dev": pools["dev"], "test_clean": test[:a], "test_other": test[a:b],
             "test_nonspeech_edges": test[b:], "pretrain_encoder": pools["pretrain_encoder"]}
    plans = {name: plan_set(name, texts[name], unseen if name == "test_other" else seen, seed, audio_dir)
             for name in SETS}
    for name in SETS:
        if force:
            shutil.rmtree(os.path.join(audio_dir, name), ignore_errors=True)
    all_utts = [u for name in SETS for u in plans[name]]
    logger.info("synthesizing %d utterances (%s) into %s with %d jobs", len(all_utts),
                ", ".join(f"{n}={len(plans[n])}" for n in SETS), audio_dir, nj)
    for _ in run_pool(make_utt, all_utts, nj, "synthesis", logger, threads=True):
        pass

    summary = {"settings": settings, "sets": {}}
    for name in SETS:
        utts = plans[name]
        seconds = [sf.info(u.path).duration for u in utts]
        data = DataDir(wav_scp={u.utt_id: u.path for u in utts}, utt2spk={u.utt_id: u.voice.speaker_id for u in utts},
                       text={u.utt_id: u.text for u in utts})
        write_data_dir(os.path.join(data_dir, name), data)
        summary["sets"][name] = dict(
            utterances=len(utts), speakers=sorted({u.voice.speaker_id for u in utts}),
            hours=round(sum(seconds) / 3600, 3),
            seconds_min=round(min(seconds), 2), seconds_max=round(max(seconds), 2),
            noisy=sum(u.kind == "noisy" for u in utts))
        logger.info("%s/%s: %d utterances, %d speakers, %.2f h (%.1f-%.1f s)", data_dir, name, len(utts),
                    len(summary["sets"][name]["speakers"]), sum(seconds) / 3600, min(seconds), max(seconds))
    os.makedirs(local, exist_ok=True)
    with open(os.path.join(local, "lm_text.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(pools["lm_text"]) + "\n")
    logger.info("%s: %d sentences for LLM text pretraining", os.path.join(local, "lm_text.txt"),
                len(pools["lm_text"]))
    summary["lm_text_sentences"] = len(pools["lm_text"])
    summary["edges"] = {u.utt_id: u.info for u in plans["test_nonspeech_edges"]}
    summary["test_other_noise"] = {u.utt_id: u.info for u in plans["test_other"] if u.info}
    with open(os.path.join(local, "synth_corpus.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    marker.write()
    logger.info("synthetic corpus done in %.0f s", time.time() - start)
