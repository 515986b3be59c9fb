"""RESULTS.md of experiment dirs, ESPnet-style, with plots (recipe stage 13).

Reads, per experiment dir ``exp/<tag>``:
  decode_*/<set>/score_wer/result.json        from ``espnet_speechllm.bin.score_wer``
  decode_*/<set>/score_wer/hallucination.json non-speech sets
  param_report.json                           {"total", "trainable", "modules": {name: {total, trainable}}}
  train.log                                   ESPnet Trainer log ("Nepoch results: [train] k=v, ... [valid] ..."),
                                              every launch of stage 9 appended: epochs and wall time of all
  config.yaml, run.sh                         when present: the config path and the command to reproduce

Writes the RESULTS.md and, per experiment, ``<exp>/images/``:
  <decode>_error_breakdown.png  Sub/Del/Ins (% of reference words) stacked, one bar per set
  <decode>_hallucination.png    inserted words per minute, one bar per non-speech set
  train_curves.png              loss/acc per epoch, train vs valid (ESPnet's own images/loss.png etc. are
                                left alone)
"""
import datetime
import glob
import json
import logging
import os
import shlex
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from espnet_speechllm.report.environment import environment
from espnet_speechllm.report.plots import plot_error_breakdown, plot_hallucination, plot_train_curves
from espnet_speechllm.report.results_tables import dropped_notes, hallucination_table, param_table, wer_table
from espnet_speechllm.report.train_log import log_launches, parse_train_log
from espnet_speechllm.scoring.results_md import write_keeping_sections
from espnet_speechllm.utils.cli import UserError

logger = logging.getLogger(__name__)


def expand_exp_dirs(patterns: Sequence[str]) -> List[Path]:
    """The dirs of ``patterns`` (shell-style globs expanded), in order, each once; a pattern matching none is an
    error."""
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


def _rel(path: Path, base: Path) -> str:
    return os.path.relpath(path, base)


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
    """The markdown section of one experiment (links relative to ``base``); writes its figures."""
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
    """Write ``out`` for ``exp_dirs`` (``argv``: the command-line arguments to cite); sections that other tools
    own (e.g. the ablation tables of local/run_ablations.sh) are kept. Returns the text written."""
    base = out.resolve().parent
    command = "python -m espnet_speechllm.bin.make_report " + " ".join(shlex.quote(a) for a in argv)
    lines = [f"<!-- Generated by {command} -->", "# RESULTS", "", "## Environments", ""]
    lines += [f"- {k}: `{v}`" for k, v in environment(base)]
    lines.append("")
    for exp_dir in exp_dirs:
        lines += exp_section(exp_dir.resolve(), base, config_file, dump_dir.resolve() if dump_dir else None)
    text = "\n".join(lines).rstrip() + "\n"
    write_keeping_sections(out, text)
    logger.info("wrote %s (%d experiments)", out, len(exp_dirs))
    return text
