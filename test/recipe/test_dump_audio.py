"""dump_audio (stage 6): bad input is dropped with a per-reason count and a list, good input lands in
kaldiio arks, a non-UTF-8 transcript fails naming its line, reruns are skipped."""
import glob
import os
import shutil

import kaldiio
import numpy as np
import pytest
import soundfile as sf

from .conftest import UTILS, needs_audio_tools, pymod, read_kv, run, sox_noise, speak, write_data_dir

MODULE = "espnet_speechllm.bin.dump_audio"


@pytest.fixture
def messy_dir(tmp_path):
    """One utterance per kind of problem, plus good ones (file, pipe, ark, empty transcript)."""
    if shutil.which("sox") is None or shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng and sox are required")
    a = tmp_path / "audio"
    a.mkdir()
    good = speak("THE CAT SAT ON THE MAT", str(a / "good.wav"))
    (a / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage" * 4)
    sf.write(str(a / "empty.wav"), np.zeros(0, dtype=np.int16), 16000, subtype="PCM_16")
    sox_noise(str(a / "long.wav"), 3.0)
    sox_noise(str(a / "short.wav"), 0.05)
    sox_noise(str(a / "rate8k.wav"), 1.0, rate=8000)
    sox_noise(str(a / "stereo.wav"), 1.0, channels=2)
    sox_noise(str(a / "nonspeech.wav"), 1.0, "brownnoise")
    with kaldiio.WriteHelper(f"ark,scp:{a}/prev.ark,{a}/prev.scp", write_function="soundfile") as w:
        w("x", (16000, (np.sin(np.arange(8000) / 3.0) * 3000).astype(np.int16)))
    ark_entry = open(f"{a}/prev.scp").read().split()[1]
    utts = [
        ("u01-good", "u01", good, "THE CAT SAT ON THE MAT"),
        ("u02-pipe", "u02", f"sox -V1 {good} -t wav - speed 1.1 |", "THE CAT SAT ON THE MAT"),
        ("u03-ark", "u03", ark_entry, "A SINE"),
        ("u04-nonspeech", "u04", str(a / "nonspeech.wav"), ""),
        ("u05-missing", "u05", str(a / "no_such.wav"), "GONE"),
        ("u06-corrupt", "u06", str(a / "corrupt.wav"), "BROKEN"),
        ("u07-empty", "u07", str(a / "empty.wav"), "NOTHING"),
        ("u08-long", "u08", str(a / "long.wav"), "TOO LONG"),
        ("u09-short", "u09", str(a / "short.wav"), "TOO SHORT"),
        ("u10-rate", "u10", str(a / "rate8k.wav"), "EIGHT K"),
        ("u11-stereo", "u11", str(a / "stereo.wav"), "TWO CHANNELS"),
        ("u12-badpipe", "u12", "false |", "FAILED PIPE"),
    ]
    return write_data_dir(str(tmp_path / "data"), utts)


EXPECTED_DROPS = {"u05-missing": "missing_file", "u06-corrupt": "unreadable", "u07-empty": "empty_audio",
                  "u08-long": "too_long", "u09-short": "too_short", "u10-rate": "wrong_sample_rate",
                  "u11-stereo": "not_mono", "u12-badpipe": "unreadable"}


@needs_audio_tools
def test_bad_input_is_dropped_per_reason(messy_dir, tmp_path):
    out = str(tmp_path / "dump" / "set")
    p = pymod(MODULE, "--data_dir", messy_dir, "--out_dir", out, "--min_wav_duration", "0.1", "--max_wav_duration",
              "2.0", "--nj", "2")
    dropped = {line.split()[0]: line.split()[1] for line in open(f"{out}/dropped_utts.txt")}
    assert dropped == EXPECTED_DROPS
    assert all(len(line.split(maxsplit=2)) == 3 for line in open(f"{out}/dropped_utts.txt"))  # utt reason source
    for reason, n in (("unreadable", 2), ("missing_file", 1), ("too_long", 1), ("wrong_sample_rate", 1)):
        assert f"dropped {n} utterances: {reason}" in p.stderr
    assert "kept 4 of 12 utterances" in p.stderr and "1 with empty transcripts" in p.stderr

    wav = read_kv(f"{out}/wav.scp")
    assert sorted(wav) == ["u01-good", "u02-pipe", "u03-ark", "u04-nonspeech"]
    assert all(v.startswith(f"{out}/data/wav.") for v in wav.values())
    n = read_kv(f"{out}/utt2num_samples")
    for utt, entry in wav.items():
        rate, x = kaldiio.load_mat(entry)
        assert rate == 16000 and len(x) == int(n[utt])
    assert int(n["u03-ark"]) == 8000
    assert abs(int(n["u02-pipe"]) - int(n["u01-good"]) / 1.1) < 20
    assert read_kv(f"{out}/text")["u04-nonspeech"] == ""
    assert read_kv(f"{out}/utt2spk")["u01-good"] == "u01"
    run([os.path.join(UTILS, "validate_data_dir.sh"), out])

    # rerun: skipped, nothing rewritten
    mtime = os.path.getmtime(f"{out}/wav.scp")
    p = pymod(MODULE, "--data_dir", messy_dir, "--out_dir", out, "--min_wav_duration", "0.1", "--max_wav_duration",
              "2.0")
    assert "already dumped; skipping" in p.stderr and os.path.getmtime(f"{out}/wav.scp") == mtime
    # other settings: an error naming them; --force: remade
    p = pymod(MODULE, "--data_dir", messy_dir, "--out_dir", out, "--min_wav_duration", "0.1", "--max_wav_duration",
              "5.0", check=False)
    assert p.returncode == 1 and "max_wav_duration: '2.0' -> '5.0'" in p.stderr and "--force true" in p.stderr
    pymod(MODULE, "--data_dir", messy_dir, "--out_dir", out, "--min_wav_duration", "0.1", "--max_wav_duration", "5.0",
          "--force", "true")
    assert "u08-long" in read_kv(f"{out}/wav.scp")


@needs_audio_tools
def test_non_utf8_transcript_fails_naming_the_line(messy_dir, tmp_path):
    lines = open(f"{messy_dir}/text", "rb").read().split(b"\n")
    lines[2] = lines[2] + b" NA\xefVE"
    open(f"{messy_dir}/text", "wb").write(b"\n".join(lines))
    p = pymod(MODULE, "--data_dir", messy_dir, "--out_dir", str(tmp_path / "out"), check=False)
    assert p.returncode == 1
    assert f"{messy_dir}/text:3: not valid UTF-8" in p.stderr and "Traceback" not in p.stderr
    assert not os.path.exists(tmp_path / "out" / "wav.scp")


@needs_audio_tools
def test_existing_output_is_not_overwritten(messy_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("user file")
    p = pymod(MODULE, "--data_dir", messy_dir, "--out_dir", str(out), check=False)
    assert p.returncode == 1 and "--force true" in p.stderr and f"{out} exists but is incomplete (no .done)" in p.stderr
    assert (out / "mine.txt").read_text() == "user file"


@needs_audio_tools
def test_test_set_drops_what_the_encoder_cannot_take(small_speech_dir, tmp_path):
    """Stage 6's bounds for a test set (the encoder's receptive field, 400 samples = 0.025 s; no upper bound):
    a 28-sample wav, an empty one and one truncated inside its data (header 3 s, file 0.94 s) are dropped and
    counted, the rest kept whatever their length."""
    a = tmp_path / "audio"
    a.mkdir()
    sf.write(str(a / "tiny.wav"), np.ones(28, dtype=np.int16), 16000, subtype="PCM_16")
    sf.write(str(a / "empty.wav"), np.zeros(0, dtype=np.int16), 16000, subtype="PCM_16")
    sf.write(str(a / "full.wav"), (np.sin(np.arange(48000) / 5.0) * 3000).astype(np.int16), 16000, subtype="PCM_16")
    (a / "truncated.wav").write_bytes((a / "full.wav").read_bytes()[:44 + 2 * 15000])
    good = read_kv(f"{small_speech_dir}/wav.scp")
    utts = [(u, u.split("-")[0], w, "HELLO") for u, w in good.items()]
    utts += [("z1-tiny", "z1", str(a / "tiny.wav"), "A"), ("z2-empty", "z2", str(a / "empty.wav"), "B"),
             ("z3-trunc", "z3", str(a / "truncated.wav"), "C"), ("z4-full", "z4", str(a / "full.wav"), "D")]
    out = str(tmp_path / "test_set")
    p = pymod(MODULE, "--data_dir", write_data_dir(str(tmp_path / "data"), utts), "--out_dir", out,
              "--min_wav_duration", "0.025", "--max_wav_duration", "inf")
    dropped = {line.split()[0]: line.split()[1] for line in open(f"{out}/dropped_utts.txt")}
    assert dropped == {"z1-tiny": "too_short", "z2-empty": "empty_audio", "z3-trunc": "truncated"}
    assert "dropped 1 utterances: truncated (e.g. z3-trunc: header says 3.00 s, file holds 0.94 s)" in p.stderr
    assert sorted(read_kv(f"{out}/wav.scp")) == sorted([*good, "z4-full"])


def test_everything_dropped_is_an_error(tmp_path):
    d = write_data_dir(str(tmp_path / "d"), [("a", "a", str(tmp_path / "none.wav"), "X")])
    p = pymod(MODULE, "--data_dir", d, "--out_dir", str(tmp_path / "out"), check=False)
    assert p.returncode == 1 and "every utterance was dropped" in p.stderr


@needs_audio_tools
def test_flac_arks_read_back_like_wav(small_speech_dir, tmp_path):
    outs = {}
    for fmt in ("wav", "flac"):
        outs[fmt] = str(tmp_path / fmt)
        pymod(MODULE, "--data_dir", small_speech_dir, "--out_dir", outs[fmt], "--audio_format", fmt)
    sizes = {fmt: sum(os.path.getsize(p) for p in glob.glob(f"{o}/data/*.ark")) for fmt, o in outs.items()}
    assert sizes["flac"] < 0.8 * sizes["wav"]
    wav, flac = (read_kv(f"{outs[f]}/wav.scp") for f in ("wav", "flac"))
    for utt in wav:
        (r1, x1), (r2, x2) = kaldiio.load_mat(wav[utt]), kaldiio.load_mat(flac[utt])
        assert r1 == r2 == 16000 and np.array_equal(x1, x2)
