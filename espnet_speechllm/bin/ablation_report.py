"""Write the ablation tables (local/run_ablations.sh) into a section of RESULTS.md.

Reads ``plan.json`` from espnet_speechllm.bin.ablation_plan and, per run, ``<exp_root>/asr_llm_<tag>/``:
param_report.json (trainable parameters), train.log (training wall time, first to last log line) and
``<inference_tag>/<set>/score_wer/{result,hallucination}.json`` (stage 12). With several seeds a cell shows
``mean ±spread`` where spread = (max - min) / 2 over the seeds. A missing result is ``n/a`` and logged,
never dropped silently.

The tables go between ``<!-- ablations:begin -->`` and ``<!-- ablations:end -->`` in ``--out``; the rest of
the file (stage 13's report) is kept, and stage 13 keeps this section in turn.
"""
import json
import logging
import os
import statistics
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from espnet_speechllm.bin.make_report import log_span_seconds
from espnet_speechllm.scoring.results_md import replace_section
from espnet_speechllm.utils.cli import make_parser, setup_logging

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


def table_lines(title: str, rows: Dict[str, List[dict]], descriptions: Dict[str, str]) -> List[str]:
    """One markdown table: per variant, params + time + per speech set WER (S/D/I) + per non-speech set."""
    speech_sets: List[str] = []
    nonspeech_sets: List[str] = []
    for runs in rows.values():
        for run in runs:
            for name, entry in run["sets"].items():
                target = nonspeech_sets if "hallucination" in entry else speech_sets
                if name not in target:
                    target.append(name)
    header = ["variant", "seeds", "trainable params", "train time (min)"]
    header += [f"{s} WER % (Sub/Del/Ins)" for s in speech_sets]
    header += [f"{s} non-empty % / ins. words per min" for s in nonspeech_sets]
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for variant, runs in rows.items():
        done = [r for r in runs if r["sets"]]
        cells = [f"{variant}" + (f" ({descriptions[variant]})" if descriptions.get(variant) else ""), str(len(done))]
        trainable = sorted({r["trainable"] for r in runs if "trainable" in r})
        cells.append(", ".join(f"{t:,}" for t in trainable) or "n/a")
        cells.append(_spread([r["train_seconds"] / 60 for r in runs if r.get("train_seconds") is not None], "{:.2f}"))
        for s in speech_sets:
            per_seed = [r["sets"][s]["result"]["percent"] for r in runs if s in r["sets"]]
            cells.append(
                _spread([p["Err"] for p in per_seed], "{:.1f}")
                + " (" + "/".join(_spread([p[k] for p in per_seed], "{:.1f}") for k in ("Sub", "Del", "Ins")) + ")"
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


def ablation_markdown(plan: dict, exp_root: Path, command: str, elapsed: Optional[float], out_dir: Path) -> str:
    lines = ["## Ablations", "",
             f"- command: `{command.strip()}`" if command else "- command: local/run_ablations.sh",
             f"- spec: `{plan['spec']}`; per-variant YAMLs: `{exp_root}/ablations/conf/<table>/`",
             f"- seeds: {', '.join(str(s) for s in plan['seeds'])}"
             + ("; cells with several seeds show mean ±(max-min)/2" if len(plan["seeds"]) > 1 else "")]
    if elapsed is not None:
        lines.append(f"- wall time of the whole ablation run: {elapsed / 60:.1f} min")
    lines.append("")
    for table, tdef in plan["tables"].items():
        rows: Dict[str, List[dict]] = {}
        for run in plan["runs"]:
            if run["table"] == table:
                rows.setdefault(run["variant"], []).append(collect_run(exp_root, run))
        ordered = {v: rows[v] for v in tdef["variants"] if v in rows}
        descriptions = {v: (d or {}).get("description", "") for v, d in tdef["variants"].items()}
        lines += table_lines(tdef.get("title", table), ordered, descriptions)
        pngs = [(v, runs[0]["attention_png"]) for v, runs in ordered.items()
                if tdef.get("attention_plots") and runs and "attention_png" in runs[0]]
        if pngs:
            lines += ["Matching-loss cross-attention (text tokens over adapter frames, first seed):", ""]
            lines += [f"![{v}]({os.path.relpath(png, out_dir)})" for v, png in pngs] + [""]
        if tdef.get("claim"):
            lines += [f"Claim: {tdef['claim']}", ""]
    return "\n".join(lines)


def get_parser():
    parser = make_parser(__doc__)
    parser.add_argument("--plan", required=True, help="plan.json written by ablation_plan")
    parser.add_argument("--exp_root", default="exp", help="the recipe's exp dir (default: %(default)s)")
    parser.add_argument("--out", default="RESULTS.md", help="markdown file to update (default: %(default)s)")
    parser.add_argument("--command", default="", help="command line to cite")
    parser.add_argument("--elapsed", type=float, default=None, help="wall seconds of the run, to cite")
    return parser


def main(argv=None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging()
    plan = json.loads(Path(args.plan).read_text())
    out = Path(args.out)
    text = ablation_markdown(plan, Path(args.exp_root), args.command, args.elapsed, out.resolve().parent)
    replace_section(out, SECTION, text)
    logger.info(f"wrote the {SECTION} section of {args.out}")


if __name__ == "__main__":
    main()
