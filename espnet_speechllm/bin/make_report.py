"""Write an ESPnet-style RESULTS.md and plots for experiment dirs (recipe stage 13).

Reads, per experiment dir ``exp/<tag>``:
  decode_*/<set>/score_wer/result.json        from ``espnet_speechllm.bin.score_wer``
  decode_*/<set>/score_wer/hallucination.json non-speech sets
  param_report.json                           {"total", "trainable", "modules": {name: {total, trainable}}}
  train.log                                   ESPnet Trainer log ("Nepoch results: [train] k=v, ... [valid] ..."),
                                              every launch of stage 9 appended: epochs and wall time of all
  config.yaml, run.sh                         when present: the config path and the command to reproduce

Writes ``--out`` (RESULTS.md) and, per experiment, ``<exp>/images/``:
  <decode>_error_breakdown.png  Sub/Del/Ins (% of reference words) stacked, one bar per set
  <decode>_hallucination.png    inserted words per minute, one bar per non-speech set
  train_curves.png              loss/acc per epoch, train vs valid (ESPnet's own images/loss.png etc. are
                                left alone)

Example:
  python -m espnet_speechllm.bin.make_report --exp_dir 'exp/asr_*' --out RESULTS.md \\
      --config_file conf/train_asr_llm.yaml
"""

import argparse
import datetime
import glob
import importlib.metadata
import json
import logging
import os
import platform
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from espnet_speechllm.scoring.results_md import write_keeping_sections
from espnet_speechllm.scoring.sclite import SCLITE_FIELDS, find_sclite
from espnet_speechllm.utils.cli import UserError, run_main, setup_logging

logger = logging.getLogger(__name__)

_PACKAGES = ("torch", "transformers", "peft", "espnet", "jiwer")
_CURVE_KEYS = ("loss", "acc", "loss_ce", "loss_match")
# Drawn in the panel of another statistic: valid accuracy with the speech swapped between utterances (the text
# prior alone) next to the accuracy itself.
_COMPANIONS = {"acc": ("acc_mismatched", "valid, speech swapped")}

# ESPnet's Reporter.log_message(): "3epoch results: [train] iter_time=1.2e-04, loss=3.1, ..., [valid] ..."
_EPOCH_LINE = re.compile(r"(\d+)epoch results: (.*)$")
_SECTION = re.compile(r"\[(\w+)\] (.*?)(?=, \[\w+\] |$)")
# "time=1 minute and 2.5 seconds" holds spaces and commas: only whitespace-free numeric values are kept.
_KEY_VALUE = re.compile(r"(?:^|, )([A-Za-z_][\w.]*)=([^\s,]+)(?=,|$)")
_TIMESTAMP = re.compile(r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Write RESULTS.md (environment, params, WER and hallucination tables) and PNG plots "
        "from scored experiment dirs.",
    )
    parser.add_argument(
        "--exp_dir",
        action="append",
        required=True,
        help="experiment dir exp/<tag>; repeatable; shell-style globs are expanded ('exp/asr_*')",
    )
    parser.add_argument("--out", default="RESULTS.md", help="markdown file to write (default: %(default)s)")
    parser.add_argument("--config_file", default=None, help="training config to cite (default: <exp>/config.yaml)")
    parser.add_argument("--dump_dir", default=None,
                        help="dump dir of the scored sets (dump/raw): their stage-6 drops are noted under the tables")
    parser.add_argument(
        "--log_level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="(default: %(default)s)"
    )
    return parser


# ---------------------------------------------------------------- inputs


def expand_exp_dirs(patterns: Sequence[str]) -> List[Path]:
    dirs: List[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        matches = [Path(m) for m in matches if Path(m).is_dir()]
        if not matches:
            raise UserError(f"--exp_dir {pattern!r}: no such directory")
        dirs.extend(m for m in matches if m not in dirs)
    return dirs


def find_scores(exp_dir: Path) -> Dict[str, Dict[str, dict]]:
    """``{decode_dir_name: {set_name: {"result": ..., "hallucination": ... or None}}}``, sorted."""
    found: Dict[str, Dict[str, dict]] = {}
    for result_json in sorted(exp_dir.glob("decode_*/*/score_wer/result.json")):
        score_dir = result_json.parent
        set_dir = score_dir.parent
        with open(result_json, encoding="utf-8") as f:
            result = json.load(f)
        hallu = None
        if (score_dir / "hallucination.json").is_file():
            with open(score_dir / "hallucination.json", encoding="utf-8") as f:
                hallu = json.load(f)
        found.setdefault(set_dir.parent.name, {})[set_dir.name] = {"result": result, "hallucination": hallu}
    return found


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


_LAUNCH = re.compile(r"^# Started at ")  # the header utils/run_local.sh and utils/slurm.sh write per launch
_ENDED = re.compile(r"^# Ended \(code -?\d+\) .*elapsed time (\d+) seconds")


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


# ---------------------------------------------------------------- environment


def _run(cmd: List[str], cwd: Path) -> Optional[str]:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else None


def environment(cwd: Path) -> List[Tuple[str, str]]:
    """Versions and git hash (read-only git commands); no host names."""
    rows = [
        ("date", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")),
        ("python version", platform.python_version()),
        ("platform", f"{platform.system()} {platform.machine()}"),
    ]
    for pkg in _PACKAGES:
        try:
            rows.append((f"{pkg} version", importlib.metadata.version(pkg)))
        except importlib.metadata.PackageNotFoundError:
            rows.append((f"{pkg} version", "not installed"))
    exe = find_sclite()
    if exe:
        # sclite prints its usage (with the version line) on stderr and exits 1 without arguments.
        proc = subprocess.run([exe], capture_output=True, text=True)
        m = re.search(r"sclite Version: [\d.]+, SCTK Version: [\d.]+", proc.stdout + proc.stderr)
        rows.append(("sclite", m.group(0) if m else exe))
    git_hash = _run(["git", "rev-parse", "--short", "HEAD"], cwd)
    rows.append(("git hash", git_hash or "unknown (not a git checkout, or no commit yet)"))
    if git_hash:
        commit_date = _run(["git", "log", "-1", "--format=%cd"], cwd)
        if commit_date:
            rows.append(("commit date", commit_date))
    return rows


# ---------------------------------------------------------------- plots


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display on recipe machines
    import matplotlib.pyplot as plt

    return plt


def plot_error_breakdown(sets: Dict[str, dict], title: str, out_png: Path) -> bool:
    """Stacked Sub/Del/Ins (% of reference words) per set; sets without reference words are skipped."""
    names = [s for s, v in sets.items() if v["result"]["counts"]["Wrd"] > 0]
    if not names:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(names) + 2.5), 4))
    bottom = [0.0] * len(names)
    for key, color in (("Sub", "tab:blue"), ("Del", "tab:orange"), ("Ins", "tab:red")):
        vals = [sets[s]["result"]["percent"][key] for s in names]
        ax.bar(names, vals, bottom=bottom, label=key, color=color)
        bottom = [b + v for b, v in zip(bottom, vals)]
    for i, total in enumerate(bottom):
        ax.text(i, total, f"{total:.1f}", ha="center", va="bottom", fontsize=8)
    ax.set_ylim(0, max(max(bottom) * 1.15, 1.0))  # room for the total above the tallest bar
    ax.set_xlim(-0.75, len(names) - 0.25)  # a single set should not fill the whole axis
    ax.set_ylabel("errors (% of reference words)")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.autofmt_xdate(rotation=30)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return True


def plot_hallucination(sets: Dict[str, dict], title: str, out_png: Path) -> bool:
    names = [
        s for s, v in sets.items() if v["hallucination"] and v["hallucination"]["inserted_words_per_min"] is not None
    ]
    if not names:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(names) + 2.5), 4))
    vals = [sets[s]["hallucination"]["inserted_words_per_min"] for s in names]
    ax.bar(names, vals, color="tab:red")
    for i, v in enumerate(vals):
        ax.text(i, v, f"{v:.2f}", ha="center", va="bottom", fontsize=8)
    ax.set_ylim(0, max(max(vals) * 1.15, 1.0))
    ax.set_xlim(-0.75, len(names) - 0.25)
    ax.set_ylabel("inserted words per minute of audio")
    ax.set_title(title, fontsize=10)
    fig.autofmt_xdate(rotation=30)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return True


def plot_train_curves(epochs: Dict[int, Dict[str, Dict[str, float]]], out_png: Path) -> List[str]:
    """One panel per statistic in ``_CURVE_KEYS`` that was logged; returns the plotted statistics."""
    keys = [k for k in _CURVE_KEYS if any(k in sec for ep in epochs.values() for sec in ep.values())]
    if not keys:
        return []
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.6), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for split, style in (("train", "-o"), ("valid", "-s")):
            pts = [(e, s[split][key]) for e, s in epochs.items() if key in s.get(split, {})]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=split, markersize=3)
        if key in _COMPANIONS:
            companion, label = _COMPANIONS[key]
            pts = [(e, s["valid"][companion]) for e, s in epochs.items() if companion in s.get("valid", {})]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "--^", label=label, markersize=3)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return keys


# ---------------------------------------------------------------- markdown


def _pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.1f}"


def wer_table(sets: Dict[str, dict]) -> List[str]:
    lines = ["|dataset|" + "|".join(SCLITE_FIELDS) + "|", "|---" * len(("dataset",) + SCLITE_FIELDS) + "|"]
    for name, v in sets.items():
        r = v["result"]
        cells = [str(r["counts"]["Snt"]), str(r["counts"]["Wrd"])]
        cells += [_pct(r["percent"][k]) for k in SCLITE_FIELDS[2:]]
        lines.append(f"|{name}|" + "|".join(cells) + "|")
    return lines


def hallucination_table(sets: Dict[str, dict]) -> List[str]:
    header = "|dataset|Snt|non-empty hyp (%)|Ins (words)|Ins chars|audio (min)|Ins words/min|Ins chars/min|"
    lines = [header, "|---" * 8 + "|"]
    for name, v in sets.items():
        h = v["hallucination"]
        if not h:
            continue
        per_min = [
            "-" if h[k] is None else f"{h[k]:.2f}" for k in ("inserted_words_per_min", "inserted_chars_per_min")
        ]
        lines.append(
            f"|{name}|{h['num_utts']}|{_pct(h['nonempty_hyp_percent'])}|{h['inserted_words']}|"
            f"{h['inserted_chars']}|{h['audio_minutes']:.2f}|{per_min[0]}|{per_min[1]}|"
        )
    return lines if len(lines) > 2 else []


def param_table(report: dict) -> List[str]:
    def fmt(n: int) -> str:
        return f"{n:,} ({n / 1e6:.1f} M)"

    lines = ["|module|total|trainable|trainable (%)|", "|---|---|---|---|"]
    rows = list(report.get("modules", {}).items()) + [("**all**", report)]
    for name, d in rows:
        share = 100.0 * d["trainable"] / d["total"] if d["total"] else 0.0
        lines.append(f"|{name}|{fmt(d['total'])}|{fmt(d['trainable'])}|{share:.2f}|")
    return lines


def _rel(path: Path, base: Path) -> str:
    return os.path.relpath(path, base)


def dropped_notes(sets: Sequence[str], dump_dir: Optional[Path], base: Path) -> List[str]:
    """One line per set whose stage-6 dump dropped utterances: how many, why, and where the list is."""
    notes = []
    for name in sets:
        listing = dump_dir / name / "dropped_utts.txt" if dump_dir is not None else None
        if listing is None or not listing.is_file():
            continue
        reasons: Dict[str, int] = {}
        with open(listing, encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2:
                    reasons[parts[1]] = reasons.get(parts[1], 0) + 1
        if reasons:
            why = ", ".join(f"{r} {n}" for r, n in sorted(reasons.items()))
            notes.append(f"- {name}: {sum(reasons.values())} utterance(s) dropped at stage 6 and not scored "
                         f"({why}); list: `{_rel(listing, base)}`")
    return notes


def training_command(resume_script: str) -> str:
    """The user's stage-9 command from ``exp/<tag>/run.sh``: its ``asr_llm.sh`` line, relative to the recipe dir,
    without the resume script's own lines (shebang, comments, ``cd <abs path>``, ``export``, ``exec``, ``"$@"``)."""
    for line in resume_script.splitlines():
        line = line.strip()
        if "asr_llm.sh" in line and not line.startswith("#"):
            line = line[len("exec "):] if line.startswith("exec ") else line
            return line[: -len(' "$@"')] if line.endswith(' "$@"') else line
    return resume_script.strip()


def exp_section(exp_dir: Path, base: Path, config_file: Optional[str], dump_dir: Optional[Path] = None) -> List[str]:
    lines = [f"## {_rel(exp_dir, base) if exp_dir != base else exp_dir.name}", ""]
    config = config_file or (str(exp_dir / "config.yaml") if (exp_dir / "config.yaml").is_file() else None)
    if config:
        lines.append(f"- config: `{config}`")
    images = exp_dir / "images"
    figures: List[str] = []

    train_log = exp_dir / "train.log"
    if train_log.is_file():
        epochs = parse_train_log(train_log)
        launches = log_launches(train_log)
        if epochs:
            last = max(epochs)
            lines.append(f"- training: {len(epochs)} epochs logged (last: {last}) in `{_rel(train_log, base)}`")
            valid_acc = {e: s["valid"]["acc"] for e, s in epochs.items() if "acc" in s.get("valid", {})}
            if valid_acc:
                best = max(valid_acc, key=valid_acc.get)
                mismatched = epochs[best]["valid"].get("acc_mismatched")
                lines.append(f"- best valid acc: {valid_acc[best]:.4f} (epoch {best})" + (
                    "" if mismatched is None else
                    f"; with the speech swapped between utterances (acc_mismatched): {mismatched:.4f}"))
            images.mkdir(parents=True, exist_ok=True)
            if plot_train_curves(epochs, images / "train_curves.png"):
                figures.append(f"![training curves]({_rel(images / 'train_curves.png', base)})")
        else:
            logger.warning("%s: no 'Nepoch results:' lines", train_log)
        if launches:
            total = datetime.timedelta(seconds=int(sum(launches)))
            lines.append(f"- train.log wall time: {total}" + (
                f" over {len(launches)} launches (resumed)" if len(launches) > 1 else ""))
    lines.append("")
    if (exp_dir / "run.sh").is_file():
        cmd = training_command((exp_dir / "run.sh").read_text(encoding="utf-8", errors="replace"))
        resume = os.path.relpath(exp_dir / "run.sh")
        lines += [f"Command that produced it (in the recipe dir; `{resume}` resumes it):", "", "```sh", cmd,
                  "```", ""]
    for fig in figures:
        lines += [fig, ""]

    if (exp_dir / "param_report.json").is_file():
        with open(exp_dir / "param_report.json", encoding="utf-8") as f:
            report = json.load(f)
        for key in ("total", "trainable"):
            if key not in report:
                raise UserError(f"{exp_dir / 'param_report.json'}: missing key {key!r}")
        lines += ["### Parameters", ""] + param_table(report) + [""]

    scores = find_scores(exp_dir)
    if not scores:
        logger.warning("%s: no decode_*/<set>/score_wer/result.json", exp_dir)
        lines += ["No scored decoding yet (run stage 12).", ""]
    for decode_name, sets in scores.items():
        lines += [f"### WER: {decode_name}", ""]
        lines += wer_table(sets)
        notes = dropped_notes(list(sets), dump_dir, base)
        if notes:
            lines += [""] + notes
        if any(v["result"]["counts"]["Wrd"] == 0 for v in sets.values()):
            lines += ["", "`-`: undefined, the set has no reference words (non-speech); see the next table."]
        hallu = hallucination_table(sets)
        if hallu:
            lines += ["", f"### Insertions on non-speech sets: {decode_name}", ""] + hallu
        images.mkdir(parents=True, exist_ok=True)
        png = images / f"{decode_name}_error_breakdown.png"
        if plot_error_breakdown(sets, f"{exp_dir.name} {decode_name}", png):
            lines += ["", f"![error breakdown]({_rel(png, base)})"]
        png = images / f"{decode_name}_hallucination.png"
        if plot_hallucination(sets, f"{exp_dir.name} {decode_name}: non-speech", png):
            lines += ["", f"![insertions on non-speech]({_rel(png, base)})"]
        lines.append("")
    return lines


def make_report(exp_dirs: Sequence[Path], out: Path, config_file: Optional[str], argv: Sequence[str],
                dump_dir: Optional[Path] = None) -> str:
    base = out.resolve().parent
    command = "python -m espnet_speechllm.bin.make_report " + " ".join(shlex.quote(a) for a in argv)
    lines = [f"<!-- Generated by {command} -->", "# RESULTS", "", "## Environments", ""]
    lines += [f"- {k}: `{v}`" for k, v in environment(base)]
    lines.append("")
    for exp_dir in exp_dirs:
        lines += exp_section(exp_dir.resolve(), base, config_file, dump_dir.resolve() if dump_dir else None)
    text = "\n".join(lines).rstrip() + "\n"
    write_keeping_sections(out, text)  # e.g. the ablation tables of local/run_ablations.sh
    logger.info("wrote %s (%d experiments)", out, len(exp_dirs))
    return text


def main(argv: Optional[Sequence[str]] = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = get_parser().parse_args(argv)
    setup_logging(args.log_level)
    make_report(expand_exp_dirs(args.exp_dir), Path(args.out), args.config_file, argv,
                Path(args.dump_dir) if args.dump_dir else None)


if __name__ == "__main__":
    run_main(main)
