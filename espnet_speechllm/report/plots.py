"""The PNG figures of the reports: per-set error breakdown, insertions on non-speech sets, training curves and
the matching loss's cross-attention map. Drawn with matplotlib's Agg backend (no display on recipe machines)."""
from pathlib import Path
from typing import Dict, List, Sequence

_CURVE_KEYS = ("loss", "acc", "loss_ce", "loss_match")
# Drawn in the panel of another statistic: valid accuracy with the speech swapped between utterances (the text
# prior alone) next to the accuracy itself.
_COMPANIONS = {"acc": ("acc_mismatched", "valid, speech swapped")}


def pyplot():
    """matplotlib.pyplot on the Agg backend, imported only when a figure is drawn."""
    import matplotlib

    matplotlib.use("Agg")  # no display on recipe machines
    import matplotlib.pyplot as plt

    return plt


def plot_error_breakdown(sets: Dict[str, dict], title: str, out_png: Path) -> bool:
    """Stacked Sub/Del/Ins (% of reference words) per set; sets without reference words are skipped."""
    names = [s for s, v in sets.items() if v["result"]["counts"]["Wrd"] > 0]
    if not names:
        return False
    plt = pyplot()
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
    """Inserted words per minute of audio, one bar per set with hallucination figures."""
    names = [
        s for s, v in sets.items() if v["hallucination"] and v["hallucination"]["inserted_words_per_min"] is not None
    ]
    if not names:
        return False
    plt = pyplot()
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
    plt = pyplot()
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


def plot_attention_map(weights, tokens: Sequence[str], frame_seconds: float, title: str, out_png: str) -> None:
    """(tokens x frames) attention weights as an image: token rows, seconds on the x axis."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(6, weights.shape[1] / 12), max(3, len(tokens) / 3)))
    ax.imshow(weights, aspect="auto", origin="upper", cmap="viridis", interpolation="nearest",
              extent=(0, weights.shape[1] * frame_seconds, len(tokens) - 0.5, -0.5))
    ax.set_yticks(range(len(tokens)))
    ax.set_yticklabels(tokens, fontsize=7)
    ax.set_xlabel("time (s), adapter frames")
    ax.set_ylabel("transcript tokens (query)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
