"""The one Kaldi data-dir module (espnet_speechllm/data/kaldi_dir.py): its reader's rules (errors name file:line),
its writer, data dirs, done-markers, and the worker pool and failure tally of the data steps."""
import os
import threading

import pytest

from espnet_speechllm.data.kaldi_dir import (
    DataDir,
    DoneMarker,
    OutputsExistError,
    read_data_dir,
    read_kaldi_file,
    read_numbers,
    write_data_dir,
    write_kaldi_file,
)
from espnet_speechllm.data.transcript import read_transcripts
from espnet_speechllm.datagen.progress import Failures, run_pool
from espnet_speechllm.utils.cli import UserError


def _file(tmp_path, data: bytes, name="text"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_reader_keeps_order_and_values_skips_blank_lines(tmp_path):
    path = _file(tmp_path, b"b two words  \n\n  a /x/a.wav\nc\xc3\xa9 caf\xc3\xa9\n")
    got = read_kaldi_file(path)
    assert got == {"b": "two words", "a": "/x/a.wav", "c\u00e9": "caf\u00e9"} and list(got) == ["b", "a", "c\u00e9"]
    assert read_kaldi_file(path, keys={"a"}) == {"a": "/x/a.wav"}


def test_empty_value_only_where_allowed(tmp_path):
    path = _file(tmp_path, b"a hello\nb\nc   \n")
    assert read_kaldi_file(path, allow_empty_value=True) == {"a": "hello", "b": "", "c": ""}
    with pytest.raises(UserError, match=r"text:2: 'b' has no value"):
        read_kaldi_file(path)


@pytest.mark.parametrize("data, message", [
    (b"a x\nb caf\xe9\n", r"text:2: not valid UTF-8"),
    (b"a x\nb y\r\nc z\n", r"text:2: holds a carriage return"),
    (b"a x\rb y\n", r"text:1: holds a carriage return"),
    (b"a x\nb y\na z\n", r"text:3: duplicate utterance id 'a'$"),
])
def test_bad_lines_are_user_errors_naming_file_and_line(tmp_path, data, message):
    path = _file(tmp_path, data)
    with pytest.raises(UserError, match=message) as e:
        read_kaldi_file(path, allow_empty_value=True)
    assert str(e.value).startswith(f"{path}:")


def test_duplicate_in_a_data_dir_names_the_fix(tmp_path):
    (tmp_path / "wav.scp").write_text("a /a.wav\n")
    path = _file(tmp_path, b"a x\na y\n", "utt2spk")
    with pytest.raises(UserError, match=f"utt2spk:2: duplicate utterance id 'a'; run utils/fix_data_dir.sh {tmp_path}"):
        read_kaldi_file(path)


def test_numbers(tmp_path):
    assert read_numbers(_file(tmp_path, b"a 16000\nb 400\n"), int) == {"a": 16000, "b": 400}
    with pytest.raises(UserError, match=r"text:2: not a number: '1 2'"):
        read_numbers(_file(tmp_path, b"a 1.5\nb 1 2\n"))
    with pytest.raises(UserError, match=r"text:2: duplicate"):
        read_numbers(_file(tmp_path, b"a 1\n" * 2))


def test_writer_sorts_in_byte_order_and_reads_back(tmp_path):
    items = {"b": "2", "a-1": "x y", "\u00e9": "e", "B": "", "a": "1"}
    write_kaldi_file(tmp_path / "f", items)
    assert (tmp_path / "f").read_text(encoding="utf-8") == "B\na 1\na-1 x y\nb 2\n\u00e9 e\n"
    assert read_kaldi_file(tmp_path / "f", allow_empty_value=True) == items
    assert not os.path.exists(tmp_path / "f.tmp")


def test_data_dir_round_trip_and_mismatch(tmp_path):
    data = DataDir(wav_scp={"s1-u2": "/b.wav", "s1-u1": "/a.wav", "s2-u1": "/c.wav"},
                   utt2spk={"s1-u2": "s1", "s1-u1": "s1", "s2-u1": "s2"}, text={"s1-u1": "HI", "s1-u2": "", "s2-u1": "A"},
                   extra={"utt2category": {"s1-u1": "x", "s1-u2": "y", "s2-u1": "z"}})
    write_data_dir(tmp_path / "d", data)
    assert (tmp_path / "d" / "spk2utt").read_text() == "s1 s1-u1 s1-u2\ns2 s2-u1\n"
    back = read_data_dir(tmp_path / "d")
    assert (back.wav_scp, back.utt2spk, back.text) == (data.wav_scp, data.utt2spk, data.text)
    assert back.utts == ["s1-u1", "s1-u2", "s2-u1"] and len(back) == 3
    (tmp_path / "d" / "text").write_text("s1-u1 HI\n")
    with pytest.raises(UserError, match="wav.scp and text have different utterances"):
        read_data_dir(tmp_path / "d")


def test_transcript_type_reads_empty_transcripts_and_the_keys_asked_for(tmp_path):
    path = _file(tmp_path, b"a HELLO\nb\nc WORLD\n")
    assert read_transcripts(str(path)) == {"a": "HELLO", "b": "", "c": "WORLD"}
    assert read_transcripts(str(path), keys_to_load={"b", "c"}) == {"b": "", "c": "WORLD"}


def test_done_marker_start(tmp_path, caplog):
    out = tmp_path / "out"
    marker = lambda **kw: DoneMarker(out / ".done", {"n": kw.pop("n", 1)}, **kw)  # noqa: E731
    assert marker().start([out]) is False  # nothing there: run
    out.mkdir()
    (out / "mine.txt").write_text("user file")
    with pytest.raises(OutputsExistError, match=f"{out} exists but is incomplete \\(no .done\\).*--force true"):
        marker().start([out])
    assert (out / "mine.txt").exists()
    assert marker(force=True).start([out]) is False and not out.exists()  # --force: removed
    out.mkdir()
    marker().write()
    caplog.set_level("INFO")
    assert marker().start([out]) is True and f"{out} already made; skipping" in caplog.text
    with pytest.raises(OutputsExistError, match=r"n: 1 -> 2"):
        marker(n=2).start([out])
    other, lone = tmp_path / "other", tmp_path / "lone.txt"
    other.mkdir()
    lone.write_text("x")
    with pytest.raises(OutputsExistError, match="exist but are incomplete.*remake them"):
        DoneMarker(tmp_path / "m.done", {}).start([other, lone, tmp_path / "absent"])
    assert DoneMarker(tmp_path / "m.done", {}, force=True).start([other, lone]) is False
    assert not other.exists() and not lone.exists()


def _square(x):
    return x * x + _OFFSET


_OFFSET = 0


def _set_offset(v):
    global _OFFSET
    _OFFSET = v


@pytest.mark.parametrize("threads", [False, True])
def test_run_pool_keeps_job_order(threads):
    jobs = list(range(20))
    assert list(run_pool(_square, jobs, 2, "squares", threads=threads, chunksize=3)) == [x * x for x in jobs]
    if not threads:  # the initializer runs in each worker process, not here
        assert list(run_pool(_square, [1, 2], 2, "squares", initializer=_set_offset, initargs=(10,))) == [11, 14]
        assert _OFFSET == 0


def test_run_pool_raises_the_worker_error():
    def fail_on_3(x):
        if x == 3:
            raise RuntimeError("job 3 failed")
        return threading.current_thread().name

    with pytest.raises(RuntimeError, match="job 3 failed"):
        list(run_pool(fail_on_3, range(6), 2, "jobs", threads=True))


def test_failures_count_per_reason_with_the_first_example():
    f = Failures()
    for reason, example in [("b", "u1: x"), ("a", "u2: y"), ("b", "u3: z")]:
        f.add(reason, example)
    assert len(f) == 3 and f.summary() == [("a", 1, "u2: y"), ("b", 2, "u1: x")]
    assert f.summary(["b", "c", "a"]) == [("b", 2, "u1: x"), ("a", 1, "u2: y")]
    assert Failures().summary() == [] and len(Failures()) == 0
