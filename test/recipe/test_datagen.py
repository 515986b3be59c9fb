"""The synthetic corpus: sentence pools, espeak-ng speech, sox non-speech, noise mixing, and the CLIs
synth_corpus, make_nonspeech and add_noise."""
import json
import os
import random
import re

import numpy as np
import pytest
import soundfile as sf

from espnet_speechllm.data.audio_io import mix_at_snr, power, read_audio, to_float
from espnet_speechllm.datagen import espeak, nonspeech, sentences

from .conftest import UTILS, needs_audio_tools, pymod, read_kv, run, sox_noise, speak, write_data_dir


# -------------------------------------------------------------------------------------------- sentences
def test_pools_are_disjoint_deterministic_and_well_formed():
    sizes = {"test": 300, "dev": 200, "train": 2000, "pretrain_encoder": 1000, "lm_text": 5000}
    pools = sentences.make_pools(sizes, seed=3)
    assert {k: len(v) for k, v in pools.items()} == sizes
    names = list(pools)
    for i, a in enumerate(names):
        assert len(set(pools[a])) == len(pools[a])
        for b in names[i + 1:]:
            assert not set(pools[a]) & set(pools[b]), (a, b)
    assert sentences.make_pools(sizes, seed=3) == pools
    assert sentences.make_pools(sizes, seed=4)["test"] != pools["test"]
    # an earlier pool does not change when a later one is resized
    assert sentences.make_pools({**sizes, "train": 10}, seed=3)["test"] == pools["test"]
    for s in sum(pools.values(), []):
        assert sentences.MIN_WORDS <= len(s.split()) <= sentences.MAX_WORDS
        assert re.fullmatch(r"[A-Z' ]+", s), s
    assert len(sentences.vocabulary()) >= 500


def test_number_words():
    assert sentences.number_words(7) == ["SEVEN"]
    assert sentences.number_words(40) == ["FORTY"]
    assert " ".join(sentences.number_words(342)) == "THREE HUNDRED AND FORTY TWO"
    assert " ".join(sentences.number_words(900)) == "NINE HUNDRED"
    assert " ".join(sentences.year_words(1984)) == "NINETEEN EIGHTY FOUR"
    assert " ".join(sentences.year_words(2005)) == "TWO THOUSAND AND FIVE"
    assert " ".join(sentences.year_words(1907)) == "NINETEEN OH SEVEN"


def test_pool_too_large_for_the_grammar_is_an_error(monkeypatch):
    monkeypatch.setattr(sentences, "TEMPLATES", [lambda g: ["ONE", "TWO", "THREE", "FOUR"]])
    with pytest.raises(ValueError, match="distinct sentences"):
        sentences.make_pools({"a": 2})


# ---------------------------------------------------------------------------------------------- espeak
@needs_audio_tools
def test_espeak_gives_16k_mono_speech_of_plausible_duration(tmp_path):
    voices = [espeak.Voice("en-us", "m3"), espeak.Voice("en-gb-x-rp", "f2"), espeak.Voice("en-029", "klatt")]
    espeak.check_voices(voices)
    text = "THE EXAM STARTS AT A QUARTER TO SIX ON MONDAY"
    durations = {}
    for rate in (120, 220):
        path = str(tmp_path / f"r{rate}.wav")
        espeak.synthesize(text, path, voices[0], rate=rate)
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        durations[rate] = info.duration
        x, _ = sf.read(path)
        assert np.abs(x).max() > 0.05  # not silent
    words = len(text.split())
    assert words / 220 * 60 * 0.5 < durations[220] < durations[120] < words / 120 * 60 * 2
    jobs = [espeak.SynthJob(text, str(tmp_path / f"{v.speaker_id}.wav"), v) for v in voices]
    espeak.synthesize_many(jobs, nj=2)
    assert all(os.path.getsize(j.out_path) > 1000 for j in jobs)
    assert voices[0].speaker_id == "enus_m3" and voices[1].spec == "en-gb-x-rp+f2"


@needs_audio_tools
def test_unknown_voice_is_an_error():
    with pytest.raises(ValueError, match="no-such"):
        espeak.check_voices([espeak.Voice("en-us", "no-such-variant")])


# ------------------------------------------------------------------------------------------- nonspeech
@needs_audio_tools
@pytest.mark.parametrize("kind", nonspeech.KINDS)
def test_nonspeech_rate_duration_level(kind, tmp_path):
    speech = speak("A SMALL DOG SLEPT BY THE FIRE", str(tmp_path / "speech.wav"))
    out = str(tmp_path / f"{kind}.wav")
    ns = nonspeech.make_nonspeech(out, kind, 1.3, random.Random(1), speech_entry=speech, level_db=-12.0)
    x, rate = sf.read(out)
    assert rate == 16000 and x.ndim == 1
    assert abs(len(x) / rate - 1.3) < 0.01
    peak_db = 20 * np.log10(np.abs(x).max())
    assert abs(peak_db - (-12.0)) < 2.0, peak_db
    assert ns.kind == kind and ns.level_db == -12.0
    if kind == "reversed_speech":
        s, _ = sf.read(speech)
        s = s[::-1][:len(x)]
        corr = np.dot(s, x) / (np.linalg.norm(s) * np.linalg.norm(x))
        assert corr > 0.99  # the speech, backwards
    if kind in nonspeech.NOISE_KINDS:
        spec = np.abs(np.fft.rfft(x)) ** 2
        band = lambda lo, hi: spec[int(lo / 8000 * len(spec)):int(hi / 8000 * len(spec))].mean()  # noqa: E731
        ratio = band(100, 500) / band(4000, 7000)
        expect = {"white": (0.3, 3), "pink": (3, 200), "brown": (100, 1e9)}[kind]
        assert expect[0] < ratio < expect[1], (kind, ratio)


@needs_audio_tools
def test_nonspeech_random_levels_and_bad_kind(tmp_path):
    r = random.Random(0)
    levels = {nonspeech.make_nonspeech(str(tmp_path / f"{i}.wav"), "pink", 0.5, r).level_db for i in range(5)}
    assert len(levels) > 1 and all(nonspeech.LEVEL_RANGE[0] <= v <= nonspeech.LEVEL_RANGE[1] for v in levels)
    with pytest.raises(ValueError, match="unknown non-speech kind"):
        nonspeech.make_nonspeech(str(tmp_path / "x.wav"), "thunder", 1.0, r)


def test_mix_at_snr_hits_the_snr():
    rng = np.random.default_rng(0)
    speech = 0.1 * np.sin(np.arange(16000) / 5.0)
    noise = rng.normal(size=5000) * 0.3  # shorter: repeated
    for snr in (0.0, 10.0, 20.0):
        mix, rescaled = mix_at_snr(speech, noise, snr, rng)
        assert not rescaled and mix.shape == speech.shape
        measured = 10 * np.log10(power(speech) / power(mix - speech))
        assert abs(measured - snr) < 0.01
    loud = np.ones(100) * 0.9
    mix, rescaled = mix_at_snr(loud, noise, 0.0, rng)
    assert rescaled and np.abs(mix).max() <= 0.99


# ------------------------------------------------------------------------------------------------ CLIs
SMALL = ["--num_train", "6", "--num_dev", "2", "--num_test_clean", "2", "--num_test_other", "4",
         "--num_test_nonspeech_edges", "2", "--num_pretrain_encoder", "3", "--num_lm_text", "50"]


@needs_audio_tools
def test_synth_corpus(tmp_path):
    data, audio = str(tmp_path / "data"), str(tmp_path / "audio")
    p = pymod("espnet_speechllm.bin.synth_corpus", "--preset", "debug", "--data_dir", data, "--audio_dir", audio,
              *SMALL)
    assert "synthetic corpus done" in p.stderr
    sets = ["train", "dev", "test_clean", "test_other", "test_nonspeech_edges", "pretrain_encoder"]
    texts = {}
    for name in sets:
        run([os.path.join(UTILS, "validate_data_dir.sh"), f"{data}/{name}"])
        texts[name] = read_kv(f"{data}/{name}/text")
        for utt, path in read_kv(f"{data}/{name}/wav.scp").items():
            info = sf.info(path)
            assert (info.samplerate, info.channels) == (16000, 1)
            assert texts[name][utt].isupper()
    assert [len(texts[n]) for n in sets] == [6, 2, 2, 4, 2, 3]
    lm = open(f"{data}/local/lm_text.txt").read().splitlines()
    assert len(lm) == 50
    all_sentences = [set(t.values()) for t in texts.values()] + [set(lm)]
    for i, a in enumerate(all_sentences):
        for b in all_sentences[i + 1:]:
            assert not a & b
    seen = {s for n in ("train", "dev", "test_clean") for s in read_kv(f"{data}/{n}/utt2spk").values()}
    other = set(read_kv(f"{data}/test_other/utt2spk").values())
    assert not seen & other
    info = json.load(open(f"{data}/local/synth_corpus.json"))
    assert info["sets"]["test_other"]["noisy"] >= 1
    edge = info["edges"]
    assert all({"before", "after"} <= set(v) for v in edge.values())
    # rerun: skipped; other settings: an error naming them; --force: remade
    p = pymod("espnet_speechllm.bin.synth_corpus", "--preset", "debug", "--data_dir", data, "--audio_dir", audio,
              *SMALL)
    assert "skipping" in p.stderr
    p = pymod("espnet_speechllm.bin.synth_corpus", "--preset", "debug", "--data_dir", data, "--audio_dir", audio,
              *SMALL[:-1], "60", check=False)
    assert p.returncode == 1 and "sizes.lm_text: 50 -> 60" in p.stderr and "--force true" in p.stderr
    assert "Traceback" not in p.stderr


@needs_audio_tools
def test_make_nonspeech_from_sox(small_speech_dir, tmp_path):
    data = str(tmp_path / "data")
    pymod("espnet_speechllm.bin.make_nonspeech", "--source", "sox", "--data_dir", data, "--audio_dir",
          str(tmp_path / "audio"), "--speech_scp", f"{small_speech_dir}/wav.scp", "--num_train", "12", "--num_test",
          "6", "--num_bank", "4", "--min_seconds", "0.5", "--max_seconds", "1.5")
    for name, n in (("nonspeech_train", 12), ("nonspeech_test", 6), ("noise_bank", 4)):
        run([os.path.join(UTILS, "validate_data_dir.sh"), f"{data}/{name}"])
        text = read_kv(f"{data}/{name}/text")
        assert len(text) == n and all(v == "" for v in text.values())
        for path in read_kv(f"{data}/{name}/wav.scp").values():
            info = sf.info(path)
            assert info.samplerate == 16000 and 0.4 < info.duration < 1.6
    bank, test = (set(read_kv(f"{data}/{d}/wav.scp").values()) for d in ("noise_bank", "nonspeech_test"))
    assert not bank & test


@needs_audio_tools
def test_make_nonspeech_from_musan_layout(tmp_path):
    musan = tmp_path / "corpora" / "musan"
    for i in range(4):
        sox_noise(str(musan / "noise" / "free-sound" / f"noise-free-sound-{i:04d}.wav"), 5.0, "whitenoise")
    for i in range(3):
        sox_noise(str(musan / "music" / "fma" / f"music-fma-{i:04d}.wav"), 7.0, "sine", rate=44100, channels=2)
    sox_noise(str(musan / "speech" / "librivox" / "speech-librivox-0000.wav"), 4.0)
    data = str(tmp_path / "data")
    p = pymod("espnet_speechllm.bin.make_nonspeech", "--source", "musan", "--musan_dir", str(tmp_path / "corpora"),
              "--data_dir", data, "--test_ratio", "0.25", "--min_chunk_seconds", "1", "--max_chunk_seconds", "2")
    assert "resampled" in p.stderr
    wav = {n: read_kv(f"{data}/{n}/wav.scp") for n in ("nonspeech_train", "nonspeech_test", "noise_bank")}
    assert not any("speech-" in u for w in wav.values() for u in w)
    source = lambda entry: entry.split()[2]  # noqa: E731  (the file in "sox -V1 <file> ...")
    sources = {d: {source(e) for e in w.values()} for d, w in wav.items()}
    assert not sources["noise_bank"] & sources["nonspeech_test"]
    assert not sources["nonspeech_train"] & sources["nonspeech_test"]
    assert all(read_kv(f"{data}/noise_bank/utt2category")[u] == "noise" for u in wav["noise_bank"])
    assert all(v == "" for v in read_kv(f"{data}/nonspeech_test/text").values())
    for entry in list(wav["nonspeech_train"].values())[:4]:
        x, rate = read_audio(entry)
        assert rate == 16000 and x.ndim == 1 and 1.0 <= len(x) / rate <= 2.01
    p = pymod("espnet_speechllm.bin.make_nonspeech", "--source", "musan", "--musan_dir", str(tmp_path / "nowhere"),
              "--data_dir", str(tmp_path / "d2"), check=False)
    assert p.returncode == 1 and "MUSAN not found" in p.stderr and "openslr.org/17" in p.stderr


@needs_audio_tools
def test_add_noise(small_speech_dir, tmp_path):
    bank = write_data_dir(str(tmp_path / "bank"), [
        (f"n{i}", f"n{i}", sox_noise(str(tmp_path / f"n{i}.wav"), 0.7, kind), "")
        for i, kind in enumerate(["whitenoise", "pinknoise", "brownnoise"])])
    outs = []
    for name in ("a", "b"):
        out = str(tmp_path / name)
        pymod("espnet_speechllm.bin.add_noise", "--data_dir", small_speech_dir, "--noise_dir", bank, "--out_dir", out,
              "--audio_dir", str(tmp_path / f"{name}_wav"), "--ratio", "0.5", "--snr_range", "0 10", "--seed", "7")
        outs.append(out)
    copies = [open(f"{o}/noisy_copies.txt").read().splitlines() for o in outs]
    assert copies[0] == copies[1] and len(copies[0]) == 3
    wav = read_kv(f"{outs[0]}/wav.scp")
    clean = read_kv(f"{small_speech_dir}/wav.scp")
    assert len(wav) == 9 and set(clean) <= set(wav)
    for line in copies[0]:
        copy_id, src, noise_id, snr = line.split()
        assert copy_id == "noisy-" + src and 0 <= float(snr) <= 10
        assert read_kv(f"{outs[0]}/utt2spk")[copy_id] == "noisy-" + read_kv(f"{small_speech_dir}/utt2spk")[src]
        assert read_kv(f"{outs[0]}/text")[copy_id] == read_kv(f"{small_speech_dir}/text")[src]
        noisy, _ = sf.read(wav[copy_id])
        other, _ = sf.read(read_kv(f"{outs[1]}/wav.scp")[copy_id])
        assert np.array_equal(noisy, other)  # deterministic
        speech = to_float(sf.read(clean[src], dtype="int16")[0])
        if np.abs(noisy).max() < 0.98:  # not rescaled: the SNR is the one recorded
            measured = 10 * np.log10(power(speech) / power(noisy - speech))
            assert abs(measured - float(snr)) < 0.2
    run([os.path.join(UTILS, "validate_data_dir.sh"), outs[0]])
    p = pymod("espnet_speechllm.bin.add_noise", "--data_dir", small_speech_dir, "--noise_dir", bank, "--out_dir",
              outs[0], "--audio_dir", str(tmp_path / "a_wav"), "--ratio", "0.5", "--snr_range", "0 10", "--seed", "7")
    assert "skipping" in p.stderr
    p = pymod("espnet_speechllm.bin.add_noise", "--data_dir", small_speech_dir, "--noise_dir", bank, "--out_dir",
              outs[0], "--audio_dir", str(tmp_path / "a_wav"), "--ratio", "1.0", "--snr_range", "0 10", "--seed", "7",
              check=False)
    assert p.returncode == 1 and "ratio: 0.5 -> 1.0" in p.stderr


@needs_audio_tools
def test_add_noise_edges_keeps_the_speech_and_its_transcript(small_speech_dir, tmp_path):
    bank = write_data_dir(str(tmp_path / "bank"), [
        (f"n{i}", f"n{i}", sox_noise(str(tmp_path / f"n{i}.wav"), 0.7, kind), "")
        for i, kind in enumerate(["whitenoise", "brownnoise"])])
    out = str(tmp_path / "edges")
    pymod("espnet_speechllm.bin.add_noise", "--mode", "edges", "--data_dir", small_speech_dir, "--noise_dir", bank,
          "--out_dir", out, "--ratio", "0.5", "--edge_seconds", "0.5 1.5", "--prefix", "edges-", "--seed", "3")
    clean = read_kv(f"{small_speech_dir}/wav.scp")
    wav = read_kv(f"{out}/wav.scp")
    copies = open(f"{out}/noisy_copies.txt").read().splitlines()
    assert len(wav) == 9 and len(copies) == 3
    for line in copies:
        copy_id, src, _, before, after = line.split()
        assert read_kv(f"{out}/text")[copy_id] == read_kv(f"{small_speech_dir}/text")[src] != ""
        padded, rate = sf.read(wav[copy_id], dtype="int16")
        speech, _ = sf.read(clean[src], dtype="int16")
        b, a = int(float(before) * rate), int(float(after) * rate)
        assert 0.5 <= float(before) <= 1.5 and 0.5 <= float(after) <= 1.5
        assert len(padded) == b + len(speech) + a and np.array_equal(padded[b:b + len(speech)], speech)
        assert np.abs(padded[:b]).max() > 0 and np.abs(padded[b + len(speech):]).max() > 0  # non-speech, not silence
    p = pymod("espnet_speechllm.bin.add_noise", "--mode", "edges", "--data_dir", small_speech_dir, "--noise_dir", bank,
              "--out_dir", str(tmp_path / "bad"), "--edge_seconds", "0 1", check=False)
    assert p.returncode == 1 and "--edge_seconds" in p.stderr
