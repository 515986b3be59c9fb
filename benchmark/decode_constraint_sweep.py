#!/usr/bin/env python3
"""Which repetition constraints let the decoder reach real references, and do they still stop loops?

For each candidate constraint and each reference set (default: LibriSpeech dev-clean and dev-other from
``../shared/fixtures``, tokenized as the paper recipe trains: Vicuna's tokenizer, ``text_case: lower``):

- reachable %: references (+ EOS) that no step of the constraint bans (``SearchConstraints.first_bans``, the code
  the beam search masks with, for the token-level rules);
- loops: every reachable reference is extended with three typical LLM hallucinations. ``stutter``: the last word
  30 more times; ``phrase``: the last 3 words 10 more times; ``doubled``: the whole transcript once more. The
  figure is the mean / max number of extension tokens (words for the word-level rules) the rule lets through
  before it bans one (the whole extension when it never does): the insertions a loop can still cause.

Word-level rules (``word``) are the same n-gram rules over whitespace words, evaluated here in Python only (the
decoder does not implement them). A repetition penalty never bans a token, so it reaches every reference and
stops no loop for sure; what it costs is shown as the share of reference tokens it penalizes (tokens that already
occurred in the same reference).

    python benchmark/decode_constraint_sweep.py                       # the docs/decoding.md figures (about 1 minute)
    python benchmark/decode_constraint_sweep.py --text data/test_clean/text --tokenizer_dir /data/vicuna-7b-v1.5
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from espnet_speechllm.data.preprocess import TEXT_CASES, TranscriptTokenizer  # noqa: E402
from espnet_speechllm.decode.constraints import SearchConstraints  # noqa: E402
from espnet_speechllm.llm.hf_causal_lm import load_tokenizer  # noqa: E402
from espnet_speechllm.scoring.text_normalize import read_text  # noqa: E402

FIXTURES = REPO.parent / "shared" / "fixtures"
EOS = 2  # only its position matters: the rules never ban a token that is not in the history
# (label, no_repeat_ngram_size, no_loop_ngram_size) of the token-level candidates
TOKEN_RULES = [(f"token n={n}", n, 0) for n in (3, 4, 5, 6, 8, 10, 12, 13, 16)] + \
    [(f"token loop n={n}", 0, n) for n in (3, 4, 5, 6, 8)] + \
    [(f"token loop n={m} + n={n}", n, m) for m, n in ((4, 12), (6, 10), (6, 12), (6, 13), (6, 16))]
WORD_RULES = [(f"word n={n}", n, False) for n in (3, 4, 5, 6, 7, 8)] + \
    [(f"word loop n={n}", n, True) for n in (1, 2, 3, 4)]


def hallucinations(words: list[str]) -> dict[str, list[str]]:
    return {"stutter": words + words[-1:] * 30, "phrase": words + words[-3:] * 10, "doubled": words + words}


def first_word_ban(words: list[str], n: int, loop: bool) -> int | None:
    """First word index whose n-gram repeats an earlier one (loop: one at distance 1..n); None if none."""
    for i in range(n - 1, len(words)):
        gram = words[i - n + 1: i + 1]
        first = max(0, i - 2 * n + 1) if loop else 0
        if any(words[j: j + n] == gram for j in range(first, i - n + 1)):
            return i
    return None


def measure(name: str, texts: dict[str, str], preprocess) -> dict[str, dict]:
    words = {u: preprocess.normalize(t).split() for u, t in texts.items()}
    utts = list(texts)
    ids = {u: preprocess(u, {"text": texts[u]})["text"].tolist() for u in utts}
    extended = {kind: {} for kind in ("stutter", "phrase", "doubled")}
    for u in utts:
        if words[u]:
            for kind, ext in hallucinations(words[u]).items():
                extended[kind][u] = (ext, preprocess(u, {"text": " ".join(ext)})["text"].tolist())
    rows = {}
    for label, anywhere, loop in TOKEN_RULES:
        rules = SearchConstraints([EOS], no_repeat_ngram_size=anywhere, no_loop_ngram_size=loop)
        bans = dict(zip(utts, rules.first_bans([ids[u] + [EOS] for u in utts])))
        row = {"reachable": 100.0 * sum(b is None for b in bans.values()) / len(utts)}
        for kind, ext in extended.items():
            keep = [u for u in ext if bans[u] is None]
            ext_bans = rules.first_bans([ext[u][1] + [EOS] for u in keep])
            ends = [len(ext[u][1]) if b is None else b.position for u, b in zip(keep, ext_bans)]
            row[kind] = [end - len(ids[u]) for u, end in zip(keep, ends)]
        rows[label] = row
    for label, n, loop in WORD_RULES:
        bans = {u: first_word_ban(words[u], n, loop) for u in utts}
        row = {"reachable": 100.0 * sum(b is None for b in bans.values()) / len(utts)}
        for kind, ext in extended.items():
            keep = [u for u in ext if bans[u] is None]
            ends = [first_word_ban(ext[u][0], n, loop) for u in keep]
            row[kind] = [(len(ext[u][0]) if b is None else b) - len(words[u]) for u, b in zip(keep, ends)]
        rows[label] = row
    repeated = sum(len(t) - len(set(t)) for t in ids.values())
    with_repeat = sum(len(t) != len(set(t)) for t in ids.values())
    print(f"{name}: repetition penalty: reachable 100%, stops no loop for sure; it penalizes "
          f"{100.0 * repeated / sum(map(len, ids.values())):.1f}% of the reference tokens, in "
          f"{100.0 * with_repeat / len(utts):.1f}% of the references")
    print(f"{name}: longest reference {max(map(len, ids.values()))} tokens + EOS")
    return rows


def cell(inserted: list[int]) -> str:
    return f"{statistics.mean(inserted):.1f} / {max(inserted)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--text", nargs="+", default=[str(FIXTURES / "librispeech_text" / f"{s}.txt")
                                                      for s in ("dev_clean", "dev_other")], help="Kaldi text files")
    parser.add_argument("--tokenizer_dir", default=str(FIXTURES / "real_hf_files" / "vicuna-7b-v1.5"))
    parser.add_argument("--text_case", default="lower", choices=TEXT_CASES, help="as in the train config")
    args = parser.parse_args()
    for path in [*args.text, args.tokenizer_dir]:
        if not os.path.exists(path):
            sys.exit(f"{path} not found (the default inputs are in ../shared/fixtures)")
    start = time.perf_counter()
    preprocess = TranscriptTokenizer(load_tokenizer(args.tokenizer_dir), text_case=args.text_case)
    results = {Path(p).stem: measure(Path(p).stem, read_text(p), preprocess) for p in args.text}
    sets = list(results)
    print("\nreachable % per set; per set and loop kind the mean / max tokens (word rules: words) let through\n")
    print("| rule | " + " | ".join(f"{s} reachable %" for s in sets) + " | "
          + " | ".join(f"{s} {k}" for s in sets for k in ("stutter", "phrase", "doubled")) + " |")
    print("|---" * (1 + 4 * len(sets)) + "|")
    for label in results[sets[0]]:
        print(f"| {label} | " + " | ".join(f"{results[s][label]['reachable']:.2f}" for s in sets) + " | "
              + " | ".join(cell(results[s][label][k]) for s in sets for k in ("stutter", "phrase", "doubled")) + " |")
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
