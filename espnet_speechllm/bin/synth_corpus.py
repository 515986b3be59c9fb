"""Builds the synthetic corpus of the synth_llm recipe (stage 1): espeak-ng speech of generated sentences.

Outputs (Kaldi data dirs with wav.scp, text, utt2spk, spk2utt; audio under --audio_dir):
  <data_dir>/train                 seen voices, train sentences
  <data_dir>/dev                   seen voices, dev sentences
  <data_dir>/test_clean            seen voices, unseen (test) sentences
  <data_dir>/test_other            unseen voices/variants, rates outside the training range, additive
                                   noise (white/pink/brown, SNR 5-20 dB) on half of the utterances
  <data_dir>/test_nonspeech_edges  seen voices, test sentences with 0.5-3 s of non-speech (noise, tones,
                                   reversed speech, ...) before and after the speech
  <data_dir>/pretrain_encoder      speech + transcripts for pretraining the encoder (own sentences)
  <data_dir>/local/lm_text.txt     LLM text-pretraining sentences, one per line
  <data_dir>/local/synth_corpus.json  sizes, voices and durations per set
Sentence pools of all sets are disjoint. Transcripts are upper case, like LibriSpeech.

    python -m espnet_speechllm.bin.synth_corpus --preset debug --data_dir data --audio_dir downloads/synth
"""
import argparse
import json
import logging
import os
import random
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np
import soundfile as sf

from espnet_speechllm.data.audio_io import mix_at_snr, to_float, write_wav
from espnet_speechllm.data.kaldi_dir import DataDir, DoneMarker, write_data_dir
from espnet_speechllm.datagen import espeak, nonspeech, sentences
from espnet_speechllm.datagen.progress import run_pool
from espnet_speechllm.utils.cli import UserError, run_main, setup_logging, str2bool

logger = logging.getLogger(__name__)

SETS = ["train", "dev", "test_clean", "test_other", "test_nonspeech_edges", "pretrain_encoder"]
PRESETS: Dict[str, Dict[str, int]] = {
    # the smallest corpus every stage can run on: the end-to-end test of CI
    "ci": dict(train=48, dev=8, test_clean=6, test_other=6, test_nonspeech_edges=4,
               pretrain_encoder=32, lm_text=300),
    # a few minutes of audio: for tests and a first look at every stage
    "debug": dict(train=200, dev=24, test_clean=24, test_other=24, test_nonspeech_edges=16,
                  pretrain_encoder=200, lm_text=2000),
    # the recipe default: about 3 h of speech, built in a few minutes on 2 cores
    "default": dict(train=3000, dev=200, test_clean=200, test_other=200, test_nonspeech_edges=120,
                    pretrain_encoder=3000, lm_text=30000),
}
SET_TAGS = {"train": "tr", "dev": "dv", "test_clean": "tc", "test_other": "to", "test_nonspeech_edges": "te",
            "pretrain_encoder": "pe"}
NOISY_FRACTION = 0.5
TEST_OTHER_SNR = (5.0, 20.0)
EDGE_SECONDS = (0.5, 3.0)


@dataclass
class Utt:
    utt_id: str
    text: str
    voice: espeak.Voice
    rate: int
    pitch: int
    amplitude: int
    path: str
    kind: str = "plain"  # plain | noisy | edges
    seed: str = ""
    info: Dict = field(default_factory=dict)


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", default="data", help="where the Kaldi data dirs go")
    p.add_argument("--audio_dir", default="downloads/synth_corpus", help="where the wav files go")
    p.add_argument("--preset", default="default", choices=sorted(PRESETS), help="set sizes")
    for name in SETS + ["lm_text"]:
        p.add_argument(f"--num_{name}", type=int, default=None, help=f"number of {name} utterances/sentences "
                       "(default: from --preset)")
    p.add_argument("--seed", type=int, default=0, help="random seed (sentences, voices, rates, noise)")
    p.add_argument("--nj", type=int, default=2, help="parallel synthesis jobs")
    p.add_argument("--force", type=str2bool, default=False, help="remake outputs that exist")
    p.add_argument("--log_level", default="INFO")
    return p


def _speaker_params(voice: espeak.Voice, seed: int):
    """A speaker's own base rate and pitch (deterministic)."""
    r = random.Random(f"{seed}:speaker:{voice.spec}")
    lo, hi = espeak.SEEN_RATE_RANGE
    return r.randint(lo + 10, hi - 10), r.randint(espeak.PITCH_RANGE[0] + 10, espeak.PITCH_RANGE[1] - 10)


def plan_set(name: str, texts: List[str], voices: List[espeak.Voice], seed: int, audio_dir: str) -> List[Utt]:
    """Assigns voice, rate, pitch, amplitude and kind to each sentence of a set."""
    r = random.Random(f"{seed}:plan:{name}")
    order = voices[:]
    r.shuffle(order)
    utts = []
    for i, text in enumerate(texts):
        voice = order[i % len(order)]
        base_rate, base_pitch = _speaker_params(voice, seed)
        if name == "test_other":
            lo, hi = r.choice(espeak.OTHER_RATE_RANGES)
            rate = r.randint(lo, hi)
            pitch = r.randint(*espeak.PITCH_RANGE)
            kind = "noisy" if r.random() < NOISY_FRACTION else "plain"
        else:
            lo, hi = espeak.SEEN_RATE_RANGE
            rate = min(hi, max(lo, base_rate + r.randint(-10, 10)))
            pitch = min(espeak.PITCH_RANGE[1], max(espeak.PITCH_RANGE[0], base_pitch + r.randint(-5, 5)))
            kind = "edges" if name == "test_nonspeech_edges" else "plain"
        utt_id = f"{voice.speaker_id}-{SET_TAGS[name]}{i:05d}"
        path = os.path.join(audio_dir, name, voice.speaker_id, f"{utt_id}.wav")
        utts.append(Utt(utt_id, text, voice, rate, pitch, r.randint(70, 130), path, kind, f"{seed}:{name}:{i}"))
    return utts


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


def main(argv: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging(args.log_level)
    start = time.time()
    sizes = dict(PRESETS[args.preset])
    for name in SETS + ["lm_text"]:
        value = getattr(args, f"num_{name}")
        if value is not None:
            sizes[name] = value
    for name, n in sizes.items():
        if n < 1:
            raise UserError(f"--num_{name} must be >= 1, got {n}")
    audio_dir = os.path.abspath(args.audio_dir)
    local = os.path.join(args.data_dir, "local")
    settings = dict(sizes=sizes, seed=args.seed, audio_dir=audio_dir, version=1)
    marker = DoneMarker(os.path.join(local, ".synth_corpus.done"), settings, force=args.force,
                        what=f"the synthetic corpus in {args.data_dir}")
    if marker.start([os.path.join(args.data_dir, s) for s in SETS] + [os.path.join(local, "lm_text.txt")]):
        return
    espeak.check_tools()
    seen = espeak.voices(espeak.SEEN_LANGUAGES, espeak.SEEN_VARIANTS)
    unseen = espeak.voices(espeak.UNSEEN_LANGUAGES, espeak.UNSEEN_VARIANTS)
    espeak.check_voices(seen + unseen)

    n_test = sizes["test_clean"] + sizes["test_other"] + sizes["test_nonspeech_edges"]
    pools = sentences.make_pools({"test": n_test, "dev": sizes["dev"], "train": sizes["train"],
                                  "pretrain_encoder": sizes["pretrain_encoder"], "lm_text": sizes["lm_text"]},
                                 seed=args.seed)
    test = pools["test"]
    a, b = sizes["test_clean"], sizes["test_clean"] + sizes["test_other"]
    texts = {"train": pools["train"], "dev": pools["dev"], "test_clean": test[:a], "test_other": test[a:b],
             "test_nonspeech_edges": test[b:], "pretrain_encoder": pools["pretrain_encoder"]}
    plans = {name: plan_set(name, texts[name], unseen if name == "test_other" else seen, args.seed, audio_dir)
             for name in SETS}
    for name in SETS:
        if args.force:
            shutil.rmtree(os.path.join(audio_dir, name), ignore_errors=True)
    all_utts = [u for name in SETS for u in plans[name]]
    logger.info("synthesizing %d utterances (%s) into %s with %d jobs", len(all_utts),
                ", ".join(f"{n}={len(plans[n])}" for n in SETS), audio_dir, args.nj)
    for _ in run_pool(make_utt, all_utts, args.nj, "synthesis", logger, threads=True):
        pass

    summary = {"settings": settings, "sets": {}}
    for name in SETS:
        utts = plans[name]
        seconds = [sf.info(u.path).duration for u in utts]
        data = DataDir(wav_scp={u.utt_id: u.path for u in utts}, utt2spk={u.utt_id: u.voice.speaker_id for u in utts},
                       text={u.utt_id: u.text for u in utts})
        write_data_dir(os.path.join(args.data_dir, name), data)
        summary["sets"][name] = dict(
            utterances=len(utts), speakers=sorted({u.voice.speaker_id for u in utts}),
            hours=round(sum(seconds) / 3600, 3),
            seconds_min=round(min(seconds), 2), seconds_max=round(max(seconds), 2),
            noisy=sum(u.kind == "noisy" for u in utts))
        logger.info("%s/%s: %d utterances, %d speakers, %.2f h (%.1f-%.1f s)", args.data_dir, name, len(utts),
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


if __name__ == "__main__":
    run_main(main)
