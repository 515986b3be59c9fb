"""The ablation tables of RESULTS.md: each run's measured figures (params, train time, valid accuracy, scores)
gathered per table of the plan, as markdown sections that other writers of RESULTS.md keep.

What is read and how cells are formed: the ``--help`` of bin/ablation_report.py.
"""
import json
import logging
import os
import statistics
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from espnet_speechllm.report.train_log import log_span_seconds, parse_train_log
from espnet_speechllm.scoring.results_md import replace_section

logger = logging.getLogger(__name__)
SECTION = "ablations"


def _spread(values: Sequence[float], fmt: str) -> str:
    if not values:
        return "n/a"
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.mean(values))} ±{fmt.format((max(values) - min(values)) / 2)}"


def collect_run(exp_root: Path, run: dict) -> dict:
    """Measured figures of one run; absent files give absent keys (and a warning)."""
    exp = exp_root / f"asr_llm_{run['asr_tag']}"
    out: dict = {"sets": {}}
    if (exp / "param_report.json").is_file():
        report = json.loads((exp / "param_report.json").read_text())
        out["trainable"], out["total"] = report["trainable"], report["total"]
    if (exp / "train.log").is_file():
        out["train_seconds"] = log_span_seconds(exp / "train.log")
        epochs = parse_train_log(exp / "train.log")
        if epochs:  # token accuracy on the whole dev set: less noisy than WER on a test subset
            out["valid_acc"] = epochs[max(epochs)].get("valid", {}).get("acc")
    if (exp / "images" / "matching_attention.png").is_file():
        out["attention_png"] = exp / "images" / "matching_attention.png"
    decode = exp / run["inference_tag"]
    for result_json in sorted(decode.glob("*/score_wer/result.json")):
        entry = {"result": json.loads(result_json.read_text())}
        hallu = result_json.parent / "hallucination.json"
        if hallu.is_file():
            entry["hallucination"] = json.loads(hallu.read_text())
        out["sets"][result_json.parent.parent.name] = entry
    if not out["sets"]:
        logger.warning(f"{run['table']}/{run['variant']} seed {run['seed']}: no scores under {decode}")
    return out


def read_walltime(path: Path) -> Dict[tuple, float]:
    """Seconds per run ``(table, variant, seed)`` from the runner's ``walltime.tsv``: per step the longest of its
    records (the launch that did the work; a rerun that skips it records seconds), summed over the steps."""
    longest: Dict[tuple, float] = {}
    if not path.is_file():
        return {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split("\t")
        if len(fields) != 5:
            logger.warning(f"{path}:{n}: expected 5 tab-separated fields, got {len(fields)}; line ignored")
            continue
        table, variant, seed, step, seconds = fields
        key = (table, variant, str(seed), step)
        longest[key] = max(longest.get(key, 0.0), float(seconds))
    per_run: Dict[tuple, float] = {}
    for (table, variant, seed, _), seconds in longest.items():
        per_run[(table, variant, seed)] = per_run.get((table, variant, seed), 0.0) + seconds
    return per_run


def table_lines(rows: Dict[str, List[dict]], descriptions: Dict[str, str]) -> List[str]:
    """One markdown table: per variant, params + time + per speech set WER (S/D/I) + per non-speech set."""
    speech_sets: List[str] = []
    nonspeech_sets: List[str] = []
    for runs in rows.values():
        for run in runs:
            for name, entry in run["sets"].items():
                target = nonspeech_sets if "hallucination" in entry else speech_sets
                if name not in target:
                    target.append(name)
    header = ["variant", "seeds", "trainable params", "train time (min)", "valid acc (last epoch)"]
    header += [f"{s} WER % (Sub/Del/Ins)" for s in speech_sets]
    header += [f"{s} non-empty % / ins. words per min" for s in nonspeech_sets]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for variant, runs in rows.items():
        done = [r for r in runs if r["sets"]]
        cells = [f"{variant}" + (f" ({descriptions[variant]})" if descriptions.get(variant) else ""), str(len(done))]
        trainable = sorted({r["trainable"] for r in runs if "trainable" in r})
        cells.append(", ".join(f"{t:,}" for t in trainable) or "n/a")
        cells.append(_spread([r["train_seconds"] / 60 for r in runs if r.get("train_seconds") is not None], "{:.2f}"))
        cells.append(_spread([r["valid_acc"] for r in runs if r.get("valid_acc") is not None], "{:.3f}"))
        for s in speech_sets:
            per_seed = [r["sets"][s]["result"]["percent"] for r in runs if s in r["sets"]]
            cells.append(
                _spread([p["Err"] for p in per_seed], "{:.1f}")
                + " (" + "/".join(f"{statistics.mean(p[k] for p in per_seed):.1f}" for k in ("Sub", "Del", "Ins")) + ")"
                if per_seed else "n/a"
            )
        for s in nonspeech_sets:
            per_seed = [r["sets"][s]["hallucination"] for r in runs if s in r["sets"]]
            cells.append(
                _spread([h["nonempty_hyp_percent"] for h in per_seed], "{:.1f}") + " / "
                + _spread([h["inserted_words_per_min"] for h in per_seed], "{:.1f}")
                if per_seed else "n/a"
            )
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def intro_markdown(plan: dict, exp_root: Path) -> str:
    """The ``ablations`` section: heading and how to read the tables below it."""
    return "\n".join([
        "## Ablations", "",
        f"Made by `local/run_ablations.sh` from `{plan['spec']}` (per-variant YAMLs: "
        f"`{exp_root}/ablations/conf/<table>/`). Each table below is its own section, rewritten only when its "
        "table is run again; its run line gives the command, the seeds and the wall time of its runs. Cells with several "
        "seeds show mean ±(max-min)/2 (Sub/Del/Ins: means).", ""])


def table_markdown(plan: dict, table: str, exp_root: Path, command: str, walltime: Dict[tuple, float],
                   out_dir: Path) -> str:
    """The ``ablation_<table>`` section: title, run line, table, attention maps, claim."""
    tdef = plan["tables"][table]
    rows: Dict[str, List[dict]] = {}
    for run in plan["runs"]:
        if run["table"] == table:
            rows.setdefault(run["variant"], []).append(collect_run(exp_root, run))
    ordered = {v: rows[v] for v in tdef["variants"] if v in rows}
    descriptions = {v: (d or {}).get("description", "") for v, d in tdef["variants"].items()}
    run_line = f"Run: `{command.strip() or 'local/run_ablations.sh'}`; seeds {', '.join(map(str, plan['seeds']))}"
    runs = [(r["table"], r["variant"], str(r["seed"])) for r in plan["runs"] if r["table"] == table]
    timed = [walltime[r] for r in runs if r in walltime]
    if timed:
        run_line += (f"; wall time {sum(timed) / 60:.1f} min for its {len(timed)} runs"
                     + (f" ({len(runs) - len(timed)} not timed)" if len(timed) < len(runs) else "")
                     + " (each step's own run, recorded when it ran: reruns that skip work add nothing)")
    lines = [f"### {tdef.get('title', table)}", "", run_line, ""] + table_lines(ordered, descriptions)
    pngs = [(v, runs[0]["attention_png"]) for v, runs in ordered.items()
            if tdef.get("attention_plots") and runs and "attention_png" in runs[0]]
    if pngs:
        lines += ["Matching-loss cross-attention (text tokens over adapter frames, first seed):", ""]
        lines += [f"![{v}]({os.path.relpath(png, out_dir)})" for v, png in pngs] + [""]
    if tdef.get("claim"):
        lines += [f"Claim: {tdef['claim']}", ""]
    return "\n".join(lines)


def write_report(plan: dict, exp_root: Path, out: Path, command: str = "",
                 walltime: Optional[Dict[tuple, float]] = None) -> None:
    """Rewrite the intro section and the sections of the plan's tables; other tables' sections stay."""
    replace_section(out, SECTION, intro_markdown(plan, exp_root))
    for table in plan["tables"]:
        text = table_markdown(plan, table, exp_root, command, walltime or {}, out.resolve().parent)
        replace_section(out, f"{SECTION}_{table}", text)
