"""Stages 1-6 of egs2/librispeech_llm/asr1 on a tiny LibriSpeech-layout tree (espeak-ng speech as flac)
and a tiny MUSAN-layout tree (sox noise and music), run through the recipe's own run.sh in a copy of
the recipe dir."""
import glob
import os
import shutil

import kaldiio
import pytest

from .conftest import REPO, copy_recipe, needs_audio_tools, read_kv, run, sox_noise, speak

RECIPE = os.path.join(REPO, "egs2", "librispeech_llm", "asr1")
SENTENCES = ["THE OLD MAN WALKED HOME SLOWLY", "TWELVE BIRDS FLEW OVER THE RIVER", "SARAH BOUGHT TWO WARM COATS",
             "DAVID PLAYED CHESS WITH HIS SISTER", "A SMALL DOG SLEPT BY THE FIRE", "WE MET ANNA IN PARIS ON MONDAY"]
LONG = ("THE TRAIN TO BOSTON LEAVES AT A QUARTER PAST SEVEN ON MONDAY MORNING AND THE BUS TO DENVER LEAVES AT "
        "NINE O'CLOCK ON TUESDAY EVENING")


def make_librispeech(root: str):
    """LibriSpeech/<subset>/<spk>/<chapter>/<spk>-<chapter>-<utt>.flac + <spk>-<chapter>.trans.txt"""
    layout = {"train-clean-100": [("19", "198", 3), ("26", "495", 3)], "dev-clean": [("84", "121", 2)],
              "dev-other": [("116", "288", 2)], "test-clean": [("1089", "134686", 2)],
              "test-other": [("1688", "142285", 2)]}
    k = 0
    for subset, chapters in layout.items():
        for spk, chapter, n in chapters:
            d = os.path.join(root, "LibriSpeech", subset, spk, chapter)
            lines = []
            for i in range(n):
                utt = f"{spk}-{chapter}-{i:04d}"
                text = SENTENCES[k % len(SENTENCES)]
                if subset == "train-clean-100" and spk == "26" and i == 2:
                    text = LONG  # too long for --max_wav_duration, even sped up
                if subset == "test-clean" and i == 1:
                    text = LONG  # test sets are not filtered by duration
                speak(text, os.path.join(d, f"{utt}.flac"), voice="en-us+m1" if i % 2 else "en-gb+f3",
                      rate=110 if text == LONG else 175)
                lines.append(f"{utt} {text}")
                k += 1
            with open(os.path.join(d, f"{spk}-{chapter}.trans.txt"), "w") as f:
                f.write("\n".join(lines) + "\n")


def make_musan(root: str):
    musan = os.path.join(root, "musan")
    for i, kind in enumerate(["whitenoise", "pinknoise", "brownnoise", "pinknoise"]):
        sox_noise(os.path.join(musan, "noise", "free-sound", f"noise-free-sound-{i:04d}.wav"), 4.0, kind)
    for i in range(3):
        sox_noise(os.path.join(musan, "music", "jamendo", f"music-jamendo-{i:04d}.wav"), 5.0, "sine")
    sox_noise(os.path.join(musan, "speech", "librivox", "speech-librivox-0000.wav"), 3.0)
    return musan


@pytest.fixture(scope="module")
def recipe_run(tmp_path_factory):
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        pytest.skip("espeak-ng and sox are required")
    root = tmp_path_factory.mktemp("librispeech_recipe")
    make_librispeech(str(root / "corpora"))
    musan = make_musan(str(root / "corpora"))
    recipe = copy_recipe(RECIPE, str(root / "asr1"))
    args = ["./run.sh", "--stage", "1", "--stop_stage", "6", "--nj", "2", "--train_set", "train_clean_100",
            "--local_data_opts", "--train_subsets train-clean-100",
            "--nonspeech_opts", "--test_ratio 0.3 --min_chunk_seconds 1 --max_chunk_seconds 2",
            "--noise_aug_ratio", "0.5", "--nonspeech_ratio", "0.5", "--max_wav_duration", "6"]
    env = dict(LIBRISPEECH=str(root / "corpora"), MUSAN=musan)
    first = run(args, cwd=recipe, **env)
    second = run(args, cwd=recipe, **env)
    return dict(recipe=recipe, first=first, second=second, args=args, env=env)


@needs_audio_tools
def test_stage1_data_dirs(recipe_run):
    data = os.path.join(recipe_run["recipe"], "data")
    counts = {d: len(read_kv(f"{data}/{d}/wav.scp")) for d in
              ("train_clean_100", "dev_clean", "dev_other", "test_clean", "test_other", "dev")}
    assert counts == {"train_clean_100": 6, "dev_clean": 2, "dev_other": 2, "test_clean": 2, "test_other": 2, "dev": 4}
    assert read_kv(f"{data}/train_clean_100/utt2spk")["19-198-0001"] == "19"
    wav = read_kv(f"{data}/train_clean_100/wav.scp")["26-495-0000"]
    assert wav.endswith("/LibriSpeech/train-clean-100/26/495/26-495-0000.flac") and os.path.isfile(wav)
    assert read_kv(f"{data}/train_clean_100/text")["26-495-0002"] == LONG
    assert not os.path.exists(f"{data}/train_960")  # only one training subset was asked for


@needs_audio_tools
def test_stage2_nonspeech(recipe_run):
    data = os.path.join(recipe_run["recipe"], "data")
    wav = {d: read_kv(f"{data}/{d}/wav.scp") for d in ("nonspeech_train", "nonspeech_test", "noise_bank")}
    for d in ("nonspeech_train", "nonspeech_test"):
        assert wav[d] and all(v == "" for v in read_kv(f"{data}/{d}/text").values())
    assert not any(u.startswith("speech-") for w in wav.values() for u in w)
    files = lambda d: {e.split()[2] for e in wav[d].values()}  # noqa: E731
    assert not files("noise_bank") & files("nonspeech_test")
    assert all(u.startswith("noise-") for u in wav["noise_bank"])


@needs_audio_tools
def test_stages3to5_augmentation(recipe_run):
    data = os.path.join(recipe_run["recipe"], "data")
    sp = read_kv(f"{data}/train_clean_100_sp/wav.scp")
    assert len(sp) == 18
    assert {u.split("-")[0] for u in sp} == {"sp0.9", "sp1.1", "19", "26"}
    assert read_kv(f"{data}/train_clean_100_sp/utt2spk")["sp0.9-19-198-0000"] == "sp0.9-19"
    noisy = read_kv(f"{data}/train_clean_100_sp_noisy/wav.scp")
    copies = [u for u in noisy if u.startswith("noisy-")]
    assert len(noisy) == 27 and len(copies) == 9
    assert all(os.path.isfile(noisy[u]) for u in copies)
    final = read_kv(f"{data}/train_clean_100_final/text")
    n_nonspeech = sum(v == "" for v in final.values())
    n_avail = len(read_kv(f"{data}/nonspeech_train/wav.scp"))
    assert n_nonspeech == min(14, n_avail) and len(final) == 27 + n_nonspeech


@needs_audio_tools
def test_stage6_dump(recipe_run):
    recipe = recipe_run["recipe"]
    dump = os.path.join(recipe, "dump", "raw")
    train = f"{dump}/train_clean_100_final"
    dropped = {line.split()[0]: line.split()[1] for line in open(f"{train}/dropped_utts.txt")}
    long_ids = {u for u in dropped if u.endswith("26-495-0002")}
    assert long_ids and set(dropped.values()) == {"too_long"}
    assert {"26-495-0002", "sp0.9-26-495-0002", "sp1.1-26-495-0002"} <= long_ids
    wav = read_kv(f"{train}/wav.scp")
    assert not long_ids & set(wav)
    n = read_kv(f"{train}/utt2num_samples")
    for utt in list(wav)[:5]:
        rate, x = kaldiio.load_mat(os.path.join(recipe, wav[utt]))
        assert rate == 16000 and len(x) == int(n[utt]) <= 6 * 16000
    assert sum(v == "" for v in read_kv(f"{train}/text").values()) >= 1
    # test sets: no upper bound; the lower bound is the encoder's receptive field; non-speech test set included
    cmd = open(os.path.join(recipe, "exp", "logdir", "stage6_dump_test_clean.log")).readline()
    assert "--min_wav_duration 0.025 --max_wav_duration inf" in cmd
    assert len(read_kv(f"{dump}/test_clean/wav.scp")) == 2
    assert int(read_kv(f"{dump}/test_clean/utt2num_samples")["1089-134686-0001"]) > 6 * 16000
    for d in ("dev", "dev_clean", "dev_other", "test_other", "nonspeech_test"):
        assert os.path.getsize(f"{dump}/{d}/wav.scp") > 0
    assert all(v == "" for v in read_kv(f"{dump}/nonspeech_test/text").values())
    logs = sorted(os.path.basename(p) for p in glob.glob(os.path.join(recipe, "exp", "logdir", "*.log")))
    assert "stage6_dump_train_clean_100_final.log" in logs and "stage2_make_nonspeech.log" in logs


@needs_audio_tools
def test_rerun_skips_every_stage(recipe_run):
    out = recipe_run["second"].stdout + recipe_run["second"].stderr
    for what in ("data/train_clean_100 is done", "non-speech corpus already made", "data/train_clean_100_sp is done",
                 "data/train_clean_100_sp_noisy already made", "data/train_clean_100_final is done",
                 "dump/raw/train_clean_100_final already dumped"):
        assert what in out, what
    assert "Successfully finished" in out


@needs_audio_tools
def test_changed_option_without_force_is_an_error(recipe_run):
    args = [a if a != "0.5" else "0.2" for a in recipe_run["args"]]  # --noise_aug_ratio 0.2 --nonspeech_ratio 0.2
    args[args.index("--stage") + 1] = "5"
    p = run(args, cwd=recipe_run["recipe"], check=False, **recipe_run["env"])
    assert p.returncode != 0 and "was made with other settings" in p.stderr and "--force true" in p.stderr


def test_missing_corpus_gives_one_clear_message(tmp_path):
    recipe = copy_recipe(RECIPE, str(tmp_path / "asr1"))
    p = run(["./run.sh", "--stage", "1", "--stop_stage", "1"], cwd=recipe, check=False,
            LIBRISPEECH=str(tmp_path / "nowhere"), MUSAN="")
    assert p.returncode != 0
    errors = [line for line in (p.stdout + p.stderr).splitlines() if "ERROR" in line]
    assert len(errors) == 1
    assert "LibriSpeech subsets not found" in errors[0] and "LIBRISPEECH" in errors[0]
    assert "--download true" in errors[0] and "openslr.org/12" in errors[0]
