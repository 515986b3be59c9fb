"""Helpers of the recipe tests: paths, running the shell scripts, espeak-ng speech and Kaldi data dirs."""
import os
import shutil
import subprocess
import sys
from typing import Dict, Iterable, Optional, Sequence, Tuple

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TEMPLATE = os.path.join(REPO, "egs2", "TEMPLATE", "asr_llm1")
UTILS = os.path.join(TEMPLATE, "utils")
SCRIPTS = os.path.join(TEMPLATE, "scripts")

needs_audio_tools = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("sox") is None, reason="espeak-ng and sox are required")


def env(**extra: str) -> Dict[str, str]:
    """The environment of a script run: this Python first on PATH, the repo importable, C locale."""
    e = dict(os.environ)
    e["PATH"] = os.path.dirname(sys.executable) + os.pathsep + e.get("PATH", "")
    e["PYTHONPATH"] = REPO + (os.pathsep + e["PYTHONPATH"] if e.get("PYTHONPATH") else "")
    e["LC_ALL"] = "C"
    e.update(extra)
    return e


def run(cmd: Sequence[str], cwd: Optional[str] = None, check: bool = True, **extra_env: str
        ) -> subprocess.CompletedProcess:
    """Runs a command; on unexpected failure the assertion shows its output."""
    proc = subprocess.run(list(cmd), cwd=cwd, env=env(**extra_env), capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def pymod(module: str, *args: str, check: bool = True, cwd: Optional[str] = None) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", module, *args], cwd=cwd, check=check)


def speak(text: str, path: str, voice: str = "en-us", rate: int = 175) -> str:
    """espeak-ng speech as 16 kHz mono 16-bit audio at ``path`` (format from the extension: .wav, .flac)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    espeak = subprocess.Popen(["espeak-ng", "-v", voice, "-s", str(rate), "--stdout", text.lower()],
                              stdout=subprocess.PIPE)
    subprocess.run(["sox", "-V1", "-t", "wav", "-", "-r", "16000", "-c", "1", "-b", "16", path],
                   stdin=espeak.stdout, check=True)
    espeak.stdout.close()
    assert espeak.wait() == 0
    return path


def sox_noise(path: str, seconds: float, kind: str = "pinknoise", rate: int = 16000, channels: int = 1) -> str:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    subprocess.run(["sox", "-V1", "-r", str(rate), "-n", "-r", str(rate), "-c", str(channels), "-b", "16", path,
                    "synth", str(seconds), kind, "vol", "0.3"], check=True)
    return path


def write_data_dir(path: str, utts: Iterable[Tuple[str, str, str, str]]) -> str:
    """utts: (utt, speaker, wav.scp entry, transcript; "" = empty) -> sorted wav.scp, text, utt2spk, spk2utt."""
    rows = sorted(utts)
    os.makedirs(path, exist_ok=True)
    spk2utt: Dict[str, list] = {}
    with open(f"{path}/wav.scp", "w") as w, open(f"{path}/text", "w") as t, open(f"{path}/utt2spk", "w") as s:
        for utt, spk, entry, text in rows:
            w.write(f"{utt} {entry}\n")
            t.write(f"{utt} {text}\n" if text else f"{utt}\n")
            s.write(f"{utt} {spk}\n")
            spk2utt.setdefault(spk, []).append(utt)
    with open(f"{path}/spk2utt", "w") as f:
        for spk, us in spk2utt.items():
            f.write(f"{spk} {' '.join(us)}\n")
    return path


def read_kv(path: str) -> Dict[str, str]:
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split(maxsplit=1)
            if parts:
                out[parts[0]] = parts[1] if len(parts) > 1 else ""
    return out


@pytest.fixture(scope="session")
def small_speech_dir(tmp_path_factory) -> str:
    """A real data dir: 6 espeak-ng utterances of 2 speakers (wav files), with transcripts."""
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        pytest.skip("espeak-ng and sox are required")
    root = tmp_path_factory.mktemp("speech")
    sentences = ["THE CAT SAT ON THE MAT", "JOHN WENT TO LONDON AT SEVEN", "MARY READS A GREEN BOOK",
                 "FOUR RED APPLES FELL FROM THE TREE", "PETER PAINTED THE BLUE DOOR", "THE TRAIN LEAVES AT NINE"]
    utts = []
    for i, text in enumerate(sentences):
        spk = "spka" if i < 3 else "spkb"
        utt = f"{spk}-{i:03d}"
        wav = speak(text, str(root / "wav" / f"{utt}.wav"), voice="en-us+m3" if spk == "spka" else "en-gb+f2")
        utts.append((utt, spk, wav, text))
    return write_data_dir(str(root / "data"), utts)


def stub_recipe(root):
    """A recipe dir for stage tests: TEMPLATE linked, plain path.sh/cmd.sh, a placeholder conf/train_tiny.yaml;
    the test adds its decode YAMLs and its fake python."""
    r = root / "asr1"
    (r / "conf").mkdir(parents=True)
    for name in ("asr_llm.sh", "utils", "scripts"):
        os.symlink(os.path.join(TEMPLATE, name), r / name)
    (r / "path.sh").write_text("export LC_ALL=C\n")
    (r / "cmd.sh").write_text("train_cmd=utils/run_local.sh\ndecode_cmd=utils/run_local.sh\n")
    (r / "conf" / "train_tiny.yaml").write_text("x: 1\n")
    return r


def copy_recipe(recipe: str, dst: str) -> str:
    """A runnable copy of a recipe dir at ``dst``: its own files copied, TEMPLATE parts linked."""
    os.makedirs(dst)
    for name in ("run.sh", "db.sh", "path.sh", "cmd.sh"):
        shutil.copy2(os.path.join(recipe, name), dst)
    for name in ("local", "conf", "pretrained_models"):
        if os.path.isdir(os.path.join(recipe, name)):
            shutil.copytree(os.path.join(recipe, name), os.path.join(dst, name))
    for name in ("asr_llm.sh", "utils", "scripts"):
        os.symlink(os.path.join(TEMPLATE, name), os.path.join(dst, name))
    return dst

