"""The shell utilities of egs2/TEMPLATE/asr_llm1/{utils,scripts} on small real data dirs."""
import glob
import json
import os
import shlex
import shutil
import sys

import pytest
import soundfile as sf

from espnet_speechllm.data.audio_io import read_audio

from .conftest import SCRIPTS, TEMPLATE, UTILS, needs_audio_tools, read_kv, run, write_data_dir


def util(name):
    return os.path.join(UTILS, name)


def copy_dir(src, dst):
    shutil.copytree(src, dst)
    return str(dst)


# ---------------------------------------------------------------------------------------- parse_options
OPTS_SCRIPT = """#!/usr/bin/env bash
# A test script.
set -euo pipefail
## Group one
nj=4              # Number of jobs.
name="a b"        # A name
    # with a second help line.
use_gpu=false     # Use the GPU.
. {utils}/parse_options.sh
echo "nj=${{nj}} name=${{name}} use_gpu=${{use_gpu}} rest=$*"
"""


@pytest.fixture
def opts_script(tmp_path):
    p = tmp_path / "opts.sh"
    p.write_text(OPTS_SCRIPT.format(utils=UTILS))
    p.chmod(0o755)
    return str(p)


def test_parse_options_sets_declared_variables(opts_script):
    out = run([opts_script, "--nj", "8", "--name=x y", "--use-gpu", "true", "pos1", "--not-an-option"]).stdout
    assert out.strip() == "nj=8 name=x y use_gpu=true rest=pos1 --not-an-option"


def test_parse_options_rejects_bad_input(opts_script):
    p = run([opts_script, "--foo", "1"], check=False)
    assert p.returncode != 0 and "unknown option --foo" in p.stderr
    p = run([opts_script, "--use_gpu", "yes"], check=False)
    assert p.returncode != 0 and "true or false" in p.stderr
    p = run([opts_script, "--nj"], check=False)
    assert p.returncode != 0 and "needs a value" in p.stderr


def test_parse_options_help_is_generated_with_live_values(opts_script):
    out = run([opts_script, "--nj", "16", "--help"]).stdout
    assert "A test script." in out
    assert "Group one" in out
    assert "--nj 16" in out and "Number of jobs." in out
    assert '--name "a b"' in out and "with a second help line." in out
    assert "--use_gpu false" in out


def test_every_script_has_help():
    scripts = sorted(glob.glob(f"{UTILS}/*.sh") + glob.glob(f"{SCRIPTS}/*.sh"))
    scripts.append(os.path.join(TEMPLATE, "asr_llm.sh"))
    for script in scripts:
        if script.endswith("parse_options.sh"):
            continue
        p = run([script, "--help"], cwd=TEMPLATE, check=False)
        assert p.returncode == 0, f"{script} --help: {p.stderr}"
        assert p.stdout.strip(), f"{script} --help printed nothing"


# ------------------------------------------------------------------------------------------- run_local
def test_run_local_runs_jobs_and_names_the_failed_log(tmp_path):
    log = str(tmp_path / "log" / "job.JOB.log")
    run([util("run_local.sh"), "JOB=1:3", log, "echo", "job JOB says hi"])
    for j in (1, 2, 3):
        text = open(log.replace("JOB", str(j))).read()
        assert f"job {j} says hi" in text and "# Ended (code 0)" in text
    p = run([util("run_local.sh"), "--gpu", "1", "JOB=1:3", log, "test", "JOB", "-ne", "2"], check=False)
    assert p.returncode != 0
    assert "job 2 of 3 failed" in p.stderr and log.replace("JOB", "2") in p.stderr
    assert "# Ended (code 1)" in open(log.replace("JOB", "2")).read()
    # a log is appended to: each launch adds its header, so an earlier launch's output stays
    assert open(log.replace("JOB", "1")).read().count("# Started at ") == 2


HOSTILE = ["a;touch INJ1", "b>INJ2", "$(touch INJ3)", "`touch INJ4`", "|", "touch", "INJ5", "&&", "c'd\"e"]


def test_run_local_passes_hostile_arguments_as_literal_text(tmp_path):
    log = tmp_path / "job.JOB.log"
    run([util("run_local.sh"), "JOB=1:2", str(log), sys.executable, "-c",
         "import sys, json; print(json.dumps(sys.argv[1:]))", "JOB", *HOSTILE], cwd=str(tmp_path))
    for j in (1, 2):
        lines = open(str(log).replace("JOB", str(j))).read().splitlines()
        assert json.loads(lines[2]) == [str(j), *HOSTILE]
        assert shlex.split(lines[0][2:])[-len(HOSTILE):] == HOSTILE  # the header is the command, quoted
    assert not list(tmp_path.glob("INJ*")), "an argument reached a shell"


def test_run_local_single_job(tmp_path):
    run([util("run_local.sh"), str(tmp_path / "one.log"), "echo", "hello"])
    assert "hello" in open(tmp_path / "one.log").read()


# ------------------------------------------------------------------------------------------- split etc.
def test_split_scp_contiguous_and_even(tmp_path):
    src = tmp_path / "in.scp"
    src.write_text("".join(f"u{i:02d} x\n" for i in range(10)))
    outs = [str(tmp_path / f"part.{n}.scp") for n in (1, 2, 3)]
    run([util("split_scp.sh"), str(src), *outs])
    parts = [open(o).read().splitlines() for o in outs]
    assert [len(p) for p in parts] == [3, 3, 4]
    assert sum(parts, []) == src.read_text().splitlines()
    p = run([util("split_scp.sh"), str(src), *[str(tmp_path / f"p{n}") for n in range(11)]], check=False)
    assert p.returncode != 0 and "10 lines" in p.stderr


def test_spk2utt_round_trip(tmp_path):
    (tmp_path / "utt2spk").write_text("a-1 a\na-2 a\nb-1 b\n")
    spk2utt = run([util("utt2spk_to_spk2utt.sh"), str(tmp_path / "utt2spk")]).stdout
    assert spk2utt == "a a-1 a-2\nb b-1\n"
    (tmp_path / "spk2utt").write_text(spk2utt)
    assert run([util("spk2utt_to_utt2spk.sh"), str(tmp_path / "spk2utt")]).stdout == (tmp_path / "utt2spk").read_text()


def test_filter_scp(tmp_path):
    (tmp_path / "ids").write_text("b\n")
    (tmp_path / "scp").write_text("a 1\nb 2\nc 3\n")
    assert run([util("filter_scp.sh"), str(tmp_path / "ids"), str(tmp_path / "scp")]).stdout == "b 2\n"
    out = run([util("filter_scp.sh"), "--exclude", "true", str(tmp_path / "ids"), str(tmp_path / "scp")]).stdout
    assert out == "a 1\nc 3\n"


# ---------------------------------------------------------------------------------- validate / fix
@needs_audio_tools
def test_validate_accepts_a_good_dir(small_speech_dir):
    p = run([util("validate_data_dir.sh"), small_speech_dir])
    assert "6 utterances, 2 speakers, 0 empty transcripts: OK" in p.stderr


@needs_audio_tools
def test_validate_names_the_problem(small_speech_dir, tmp_path):
    d = copy_dir(small_speech_dir, tmp_path / "d")
    lines = open(f"{d}/text").read().splitlines()
    open(f"{d}/text", "w").write("\n".join([lines[1], lines[0]] + lines[2:]) + "\n")
    p = run([util("validate_data_dir.sh"), d], check=False)
    assert p.returncode != 0 and "text line 2" in p.stderr and "out of order" in p.stderr

    d2 = copy_dir(small_speech_dir, tmp_path / "d2")
    raw = open(f"{d2}/text", "rb").read().split(b"\n")
    raw[3] = raw[3] + b" CAF\xe9"
    open(f"{d2}/text", "wb").write(b"\n".join(raw))
    p = run([util("validate_data_dir.sh"), d2], check=False)
    assert p.returncode != 0 and "text line 4 is not valid UTF-8" in p.stderr

    d3 = copy_dir(small_speech_dir, tmp_path / "d3")
    open(f"{d3}/utt2spk", "w").write("".join(open(f"{d3}/utt2spk").readlines()[:-1]))
    p = run([util("validate_data_dir.sh"), d3], check=False)
    assert p.returncode != 0 and "fix_data_dir.sh" in p.stderr

    d4 = copy_dir(small_speech_dir, tmp_path / "d4")
    wav = read_kv(f"{d4}/wav.scp")
    wav["spka-000"] = str(tmp_path / "no_such.wav")
    open(f"{d4}/wav.scp", "w").write("".join(f"{k} {v}\n" for k, v in sorted(wav.items())))
    p = run([util("validate_data_dir.sh"), d4])
    assert "1 audio files do not exist" in p.stderr
    assert run([util("validate_data_dir.sh"), "--strict", "true", d4], check=False).returncode != 0


@needs_audio_tools
def test_fix_data_dir_keeps_the_intersection_and_says_why(small_speech_dir, tmp_path):
    d = copy_dir(small_speech_dir, tmp_path / "d")
    text = read_kv(f"{d}/text")
    del text["spka-001"]
    text["spkb-004"] = ""  # empty transcript: kept
    with open(f"{d}/text", "w") as f:  # unsorted on purpose
        for k in reversed(sorted(text)):
            f.write(f"{k} {text[k]}\n" if text[k] else f"{k}\n")
    with open(f"{d}/utt2spk", "a") as f:
        f.write("zzz-999 zzz\n")
    p = run([util("fix_data_dir.sh"), d])
    assert "kept 5 utterances, dropped 2" in p.stderr
    assert "missing in text: 1" in p.stderr
    assert sorted(read_kv(f"{d}/wav.scp")) == sorted(read_kv(f"{d}/text")) == sorted(read_kv(f"{d}/utt2spk"))
    assert "spka-001" not in read_kv(f"{d}/wav.scp")
    assert read_kv(f"{d}/text")["spkb-004"] == ""
    dropped = read_kv(f"{d}/.backup/dropped_utts.txt")
    assert dropped["spka-001"] == "missing in text" and "zzz-999" in dropped
    run([util("validate_data_dir.sh"), d])


# ------------------------------------------------------------------------------- combine / subset / copy
@needs_audio_tools
def test_combine_subset_copy(small_speech_dir, tmp_path):
    a = str(tmp_path / "a")
    b = str(tmp_path / "b")
    run([util("subset_data_dir.sh"), "--first", "2", small_speech_dir, a])
    assert list(read_kv(f"{a}/wav.scp")) == ["spka-000", "spka-001"]
    run([util("copy_data_dir.sh"), "--utt_prefix", "x-", "--spk_prefix", "x-", small_speech_dir, b])
    assert all(k.startswith("x-") for k in read_kv(f"{b}/wav.scp"))
    assert set(read_kv(f"{b}/utt2spk").values()) == {"x-spka", "x-spkb"}
    c = str(tmp_path / "c")
    p = run([util("combine_data.sh"), c, a, b])
    assert "2 (" in p.stderr and "= 8 utterances" in p.stderr
    assert len(read_kv(f"{c}/text")) == 8
    p = run([util("combine_data.sh"), str(tmp_path / "dup"), a, small_speech_dir], check=False)
    assert p.returncode != 0 and "spka-000 is in more than one source" in p.stderr

    r1, r2, r3 = (str(tmp_path / n) for n in ("r1", "r2", "r3"))
    run([util("subset_data_dir.sh"), "--random", "3", "--seed", "1", small_speech_dir, r1])
    run([util("subset_data_dir.sh"), "--random", "3", "--seed", "1", small_speech_dir, r2])
    assert read_kv(f"{r1}/wav.scp") == read_kv(f"{r2}/wav.scp") and len(read_kv(f"{r1}/wav.scp")) == 3
    seeds = set()
    for seed in range(6):
        run([util("subset_data_dir.sh"), "--random", "3", "--seed", str(seed), small_speech_dir, r3])
        seeds.add(tuple(read_kv(f"{r3}/wav.scp")))
    assert len(seeds) > 1
    (tmp_path / "list").write_text("spkb-005\nspka-000\n")
    run([util("subset_data_dir.sh"), "--utt_list", str(tmp_path / "list"), small_speech_dir, r3])
    assert list(read_kv(f"{r3}/text")) == ["spka-000", "spkb-005"]
    p = run([util("subset_data_dir.sh"), "--first", "9", small_speech_dir, r3], check=False)
    assert p.returncode != 0 and "asked for 9" in p.stderr


# -------------------------------------------------------------------------------------- speed perturb
@needs_audio_tools
def test_perturb_speed_makes_pipes_with_prefixed_ids(small_speech_dir, tmp_path):
    d = str(tmp_path / "sp")
    run([util("perturb_data_dir_speed.sh"), "0.9", small_speech_dir, d])
    wav = read_kv(f"{d}/wav.scp")
    assert sorted(wav) == sorted(f"sp0.9-{u}" for u in read_kv(f"{small_speech_dir}/wav.scp"))
    assert read_kv(f"{d}/utt2spk")["sp0.9-spka-000"] == "sp0.9-spka"
    assert read_kv(f"{d}/text")["sp0.9-spka-000"] == "THE CAT SAT ON THE MAT"
    entry = wav["sp0.9-spka-000"]
    assert entry.endswith("speed 0.9 |")
    x, rate = read_audio(entry)
    orig = sf.info(read_kv(f"{small_speech_dir}/wav.scp")["spka-000"])
    assert rate == 16000 and abs(len(x) / rate - orig.duration / 0.9) < 0.02
    run([util("validate_data_dir.sh"), d])
    # a perturbed dir perturbed again chains the pipes
    d2 = str(tmp_path / "sp2")
    run([util("perturb_data_dir_speed.sh"), "1.1", d, d2])
    x2, _ = read_audio(read_kv(f"{d2}/wav.scp")["sp1.1-sp0.9-spka-000"])
    assert abs(len(x2) / 16000 - orig.duration / 0.9 / 1.1) < 0.03
    p = run([util("perturb_data_dir_speed.sh"), "abc", small_speech_dir, d2], check=False)
    assert p.returncode != 0 and "positive number" in p.stderr


# ------------------------------------------------------------------------------------ stage scripts
def test_mix_nonspeech_adds_the_ratio(tmp_path):
    speech = write_data_dir(str(tmp_path / "speech"), [(f"s-{i:02d}", "s", f"/a/{i}.wav", "HELLO") for i in range(20)])
    ns = write_data_dir(str(tmp_path / "ns"), [(f"n-{i:02d}", f"n-{i:02d}", f"/n/{i}.wav", "") for i in range(3)])
    out = str(tmp_path / "out")
    p = run([os.path.join(SCRIPTS, "mix_nonspeech.sh"), "--ratio", "0.1", speech, ns, out], cwd=TEMPLATE)
    text = read_kv(f"{out}/text")
    assert len(text) == 22 and sum(v == "" for v in text.values()) == 2
    assert "20 speech + 2 non-speech" in p.stderr
    out2 = str(tmp_path / "out2")
    p = run([os.path.join(SCRIPTS, "mix_nonspeech.sh"), "--ratio", "0.5", speech, ns, out2], cwd=TEMPLATE)
    assert "asks for 10" in p.stderr and len(read_kv(f"{out2}/text")) == 23


def test_merge_decode_outputs(tmp_path):
    logdir = tmp_path / "logdir"
    for n, utts in ((1, ["b", "a"]), (2, ["d", "c"])):
        (logdir / f"keys.{n}.scp").parent.mkdir(parents=True, exist_ok=True)
        (logdir / f"keys.{n}.scp").write_text("".join(f"{u} x.ark:1\n" for u in sorted(utts)))
        for k in ("1best_recog", "2best_recog"):
            d = logdir / f"output.{n}" / k
            d.mkdir(parents=True)
            (d / "text").write_text("".join(f"{u} HYP {u.upper()}\n" if u != "c" else "c\n" for u in utts))
            (d / "score").write_text("".join(f"{u} -1.0\n" for u in utts))
    out = tmp_path / "decode" / "set"
    run([os.path.join(SCRIPTS, "merge_decode_outputs.sh"), str(logdir), "2", str(out)], cwd=TEMPLATE)
    assert (out / "text").read_text() == "a HYP A\nb HYP B\nc\nd HYP D\n"
    assert (out / "2best_recog" / "score").read_text().splitlines()[0] == "a -1.0"
    (logdir / "keys.2.scp").write_text("c x\nd x\ne x\n")
    p = run([os.path.join(SCRIPTS, "merge_decode_outputs.sh"), str(logdir), "2", str(out)], cwd=TEMPLATE, check=False)
    assert p.returncode != 0 and "1 of 5 utterances have no hypothesis" in p.stderr


def test_show_results(tmp_path):
    d = tmp_path / "decode" / "test_clean" / "score_wer"
    d.mkdir(parents=True)
    (d / "result.txt").write_text("| SPKR | # Snt # Wrd | Corr Sub Del Ins Err S.Err |\n"
                                  "| Sum/Avg |  10   80 | 90.0 5.0 5.0 2.5 12.5 40.0 |\n")
    (d / "hallucination.json").write_text('{"insertions": 2}\n')
    out = run([os.path.join(SCRIPTS, "show_results.sh"), str(tmp_path / "decode"), "test_clean", "other"],
              cwd=TEMPLATE).stdout
    assert "Sum/Avg" in out and "SPKR" in out and '"insertions": 2' in out and "(no " in out


def test_validate_rejects_crlf_naming_the_line(small_speech_dir, tmp_path):
    d = copy_dir(small_speech_dir, tmp_path / "d")
    with open(f"{d}/wav.scp", "rb") as f:
        lines = f.read().split(b"\n")
    lines[2] += b"\r"  # one CRLF line: its path would end in \r and be "missing"
    with open(f"{d}/wav.scp", "wb") as f:
        f.write(b"\n".join(lines))
    p = run([util("validate_data_dir.sh"), d], check=False)
    assert p.returncode != 0 and f"{d}/wav.scp line 3 holds a carriage return" in p.stderr
    assert "missing audio files" not in p.stderr
