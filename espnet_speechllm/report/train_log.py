"""ESPnet Trainer's ``train.log``: per-epoch statistics and the wall time of each launch.

Stage 9 appends every launch (resumed or not) to the same train.log, so both readers handle several launches.
"""
import datetime
import re
from pathlib import Path
from typing import Dict, List, Optional

# ESPnet's Reporter.log_message(): "3epoch results: [train] iter_time=1.2e-04, loss=3.1, ..., [valid] ..."
_EPOCH_LINE = re.compile(r"(\d+)epoch results: (.*)$")
_SECTION = re.compile(r"\[(\w+)\] (.*?)(?=, \[\w+\] |$)")
# "time=1 minute and 2.5 seconds" holds spaces and commas: only whitespace-free numeric values are kept.
_KEY_VALUE = re.compile(r"(?:^|, )([A-Za-z_][\w.]*)=([^\s,]+)(?=,|$)")
_TIMESTAMP = re.compile(r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})")
_LAUNCH = re.compile(r"^# Started at ")  # the header utils/run_local.sh and utils/slurm.sh write per launch
_ENDED = re.compile(r"^# Ended \(code -?\d+\) .*elapsed time (\d+) seconds")


def parse_train_log(path: Path) -> Dict[int, Dict[str, Dict[str, float]]]:
    """``{epoch: {"train": {"loss": ..}, "valid": {..}}}`` from ESPnet Trainer's epoch summaries.

    A resumed run may log an epoch twice; the last summary wins.
    """
    epochs: Dict[int, Dict[str, Dict[str, float]]] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = _EPOCH_LINE.search(line.rstrip("\n"))
            if not m:
                continue
            sections: Dict[str, Dict[str, float]] = {}
            for sec in _SECTION.finditer(m.group(2)):
                values = {}
                for kv in _KEY_VALUE.finditer(sec.group(2)):
                    try:
                        values[kv.group(1)] = float(kv.group(2))
                    except ValueError:
                        continue
                sections[sec.group(1)] = values
            epochs[int(m.group(1))] = sections
    return dict(sorted(epochs.items()))


def log_launches(path: Path) -> List[float]:
    """Wall seconds of each launch logged in ``path`` (stage 9 appends every launch to train.log).

    A launch starts at a "# Started at" header (a log without one is one launch). Its time is the
    "# Ended ... elapsed time N seconds" of the job backend, or for a launch killed before that line, the
    span between its first and last timestamped lines (ESPnet's asctime format).
    """
    launches: List[List[Optional[str]]] = []  # [first timestamp, last timestamp, elapsed seconds]
    fmt = "%Y-%m-%d %H:%M:%S"
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if _LAUNCH.match(line) or not launches:
                launches.append([None, None, None])
            cur = launches[-1]
            ended = _ENDED.match(line)
            if ended:
                cur[2] = ended.group(1)
                continue
            if line.startswith("# ") and not _LAUNCH.match(line):  # e.g. the launch marker of stage 9
                continue
            m = _TIMESTAMP.search(line)
            if m:
                cur[1] = m.group(1)
                cur[0] = cur[0] or cur[1]
    out = []
    for first, last, elapsed in launches:
        if elapsed is not None:
            out.append(float(elapsed))
        elif first is not None:
            out.append((datetime.datetime.strptime(last, fmt) - datetime.datetime.strptime(first, fmt)).total_seconds())
    return out


def log_span_seconds(path: Path) -> Optional[float]:
    """Total wall seconds of the launches logged in ``path`` (None: no timestamps)."""
    launches = log_launches(path)
    return sum(launches) if launches else None
