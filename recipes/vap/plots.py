"""Figures of the VAP report (matplotlib, small PNGs)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path) -> Path:
    """Small PNG (80 dpi): these go into the repository."""
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def plot_projection(va: np.ndarray, probs: dict, path: str | Path, start_s: float, seconds: float,
                    title: str = "", frame_hz: int = 50) -> Path:
    """Voice activity of both speakers over a stretch, with p_now / p_future of speaker 0."""
    plt = _plt()
    va = np.asarray(va, dtype=np.float32)
    a, b = int(start_s * frame_hz), int((start_s + seconds) * frame_hz)
    t = np.arange(a, min(b, len(va))) / frame_hz
    fig, (ax0, ax1) = plt.subplots(2, 1, figsize=(9, 3.6), sharex=True,
                                   gridspec_kw={"height_ratios": [1, 2]})
    ax0.fill_between(t, 0, va[a:b, 0], step="post", color="tab:blue", alpha=0.7, label="speaker 0")
    ax0.fill_between(t, 0, -va[a:b, 1], step="post", color="tab:orange", alpha=0.7, label="speaker 1")
    ax0.set_yticks([])
    ax0.legend(loc="upper right", fontsize=7, ncol=2)
    ax0.set_title(title, fontsize=9)
    ax1.plot(t, probs["p_now"][a:b, 0], color="tab:blue", lw=1.2, label="p_now(speaker 0)")
    ax1.plot(t, probs["p_future"][a:b, 0], color="tab:green", lw=1.2, label="p_future(speaker 0)")
    if "p_bc" in probs:
        ax1.plot(t, probs["p_bc"][a:b, 1], color="tab:red", lw=0.8, alpha=0.7,
                 label="P(backchannel, speaker 1)")
    ax1.axhline(0.5, color="grey", lw=0.6, ls="--")
    ax1.set_ylim(0, 1)
    ax1.set_xlabel("time (s)")
    ax1.legend(loc="lower right", fontsize=7, ncol=3)
    return _save(plt, fig, path)


def plot_comparison(result: dict, path: str | Path) -> Path:
    """Left: rate of taking the floor in a hold vs response gap (VAP tuned per
    budget, and silence thresholds). Right: response-gap distributions."""
    plt = _plt()
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(9, 3.4))
    for name, color, label in (("vap_sweep", "tab:blue", "VAP (tuned on val per budget)"),
                               ("silence_sweep", "tab:orange", "silence threshold")):
        pts = result[name]
        ax0.plot([p["false_takeover"] for p in pts], [p["gap_median_ms"] for p in pts], "o-",
                 color=color, ms=3, label=label)
        ax0.plot([p["false_takeover"] for p in pts], [p["gap_mean_ms"] for p in pts], ":",
                 color=color, lw=1)
    for p in result["table"]:
        if p["policy"].startswith("silence") or "default" in p["policy"]:
            ax0.annotate(p["policy"], (p["false_takeover"], p["gap_median_ms"]), fontsize=6)
    ax0.set_xlabel("rate of taking the floor in a hold")
    ax0.set_ylabel("response gap on shifts (ms)\nmedian (solid), mean (dotted)")
    ax0.grid(alpha=0.3)
    ax0.legend(fontsize=7)
    gaps = result["gaps_ms"]
    names = list(gaps)
    ax1.boxplot([gaps[n] for n in names], showfliers=False)
    ax1.set_xticks(range(1, len(names) + 1), names, fontsize=7, rotation=20)
    ax1.set_ylabel("response gap on shifts (ms)")
    ax1.grid(alpha=0.3, axis="y")
    return _save(plt, fig, path)
