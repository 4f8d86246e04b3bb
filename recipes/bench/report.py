"""Benchmark reports: report.json (one object per task), report.md, plots,
and `duplex bench compare A B`.

Figures per task (REFERENCE §5):
- pause: tor (M4 over the whole output; lower is better);
- turn_taking: tor, latency_s (M5, over TO = 1), eva_score (M8 mean, 0 for
  turns not taken), server_latency_ms (medians of the server's own
  `duplex.metrics` breakdown);
- interruption: tor and latency_s over what follows the interruption,
  stop_latency_s and response_latency_s (M7), eva_score of the response;
- backchannel: tor (M6: the agent took the floor), frequency (backchannels
  per output second, mean over samples), backchannels (mean count);
- overlap (FDB v1.5 categories other than interruption): per category,
  stop_rate (agent stopped while the user was still talking), M7 latencies;
- multi_turn: apr, ars (M9) overall and by axis.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from duplex.bench import metrics as M

LATENCY_KEYS = ("endpointing", "asr_final", "llm_first_token", "tts_first_audio", "total")


def _mean(values) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def _server_latency(results: list[dict]) -> dict:
    rows = [m for r in results for m in r.get("server_latency_ms", [])]
    return {k: M.summarize(m.get(k) for m in rows)["median"] for k in LATENCY_KEYS} if rows else {}


def task_summary(task: str, results: list[dict]) -> dict:
    out: dict = {"n": len(results)}
    if task != "overlap":
        out["tor"] = M.tor(r["to"] for r in results)
    if task in ("turn_taking", "interruption"):
        out["latency_s"] = M.summarize(r["latency_s"] for r in results)
        out["eva_score"] = _mean(r["eva_score"] for r in results)
    if task == "turn_taking":
        out["server_latency_ms"] = _server_latency(results)
    if task == "interruption":
        out["stop_latency_s"] = M.summarize(r["stop_latency_s"] for r in results)
        out["response_latency_s"] = M.summarize(r["response_latency_s"] for r in results)
        out["agent_speaking_at_onset"] = _mean(int(r["stop_latency_s"] is not None) for r in results)
    if task == "backchannel":
        out["frequency"] = _mean(r["frequency"] for r in results)
        out["backchannels"] = _mean(r["backchannels"] for r in results)
    if task == "overlap":
        for cat in sorted({r["category"] for r in results}):
            rs = [r for r in results if r["category"] == cat]
            out[cat] = {"n": len(rs), "stop_rate": _mean(None if r["stopped"] is None else int(r["stopped"])
                                                         for r in rs),
                        "stop_latency_s": M.summarize(r["stop_latency_s"] for r in rs),
                        "response_latency_s": M.summarize(r["response_latency_s"] for r in rs)}
    return out


def _fmt(v, unit: str = "") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.3f}{unit}" if isinstance(v, float) else f"{v}{unit}"


def _dist(d: dict | None) -> str:
    if not d or not d.get("n"):
        return "–"
    return f"{d['median']:.3f} / {d['p90']:.3f} s"


def markdown(report: dict, run: dict | None = None) -> str:
    lines = ["# duplex bench report", ""]
    if run:
        lines += [f"- backend: {run.get('backend')}", f"- data: {run.get('data')}",
                  f"- words from: {run.get('words')}", ""]
    lines += ["| task | n | TOR | latency median / p90 | other |", "|---|---|---|---|---|"]
    for task, s in report.items():
        if task == "multi_turn":
            other = f"APR {_fmt(s.get('apr'))}, ARS {_fmt(s.get('ars'))}" + "".join(
                f"; {a}: {_fmt(v['apr'])}/{_fmt(v['ars'])}" for a, v in s.get("by_axis", {}).items())
            lines.append(f"| multi_turn | {s['n']} | – | – | {other} |")
            continue
        if task == "overlap":
            other = "; ".join(f"{c}: stop rate {_fmt(v['stop_rate'])}, t_stop {_dist(v['stop_latency_s'])}"
                              for c, v in s.items() if isinstance(v, dict))
            lines.append(f"| overlap | {s['n']} | – | – | {other} |")
            continue
        other = []
        if "eva_score" in s:
            other.append(f"EVA {_fmt(s['eva_score'])}")
        if "stop_latency_s" in s:
            other.append(f"t_stop {_dist(s['stop_latency_s'])}, t_resp {_dist(s['response_latency_s'])}")
        if "frequency" in s:
            other.append(f"backchannels/s {_fmt(s['frequency'])}")
        if s.get("server_latency_ms"):
            other.append("server ms " + ", ".join(f"{k} {_fmt(v)}" for k, v in s["server_latency_ms"].items()))
        lat = _dist(s.get("latency_s")) if "latency_s" in s else "–"
        lines.append(f"| {task} | {s['n']} | {_fmt(s.get('tor'))} | {lat} | {'; '.join(other) or '–'} |")
    return "\n".join(lines) + "\n"


def write_report(out: Path, results: dict[str, list[dict]], extra: dict | None = None,
                 run: dict | None = None) -> dict:
    """report.json, report.md and samples.jsonl in `out`; returns the report."""
    report = {task: task_summary(task, rs) for task, rs in results.items()
              if rs and task != "multi_turn"}  # multi_turn's summary comes in `extra`
    report.update(extra or {})
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    (out / "report.md").write_text(markdown(report, run))
    with open(out / "samples.jsonl", "w") as f:
        for rs in results.values():
            f.writelines(json.dumps(r) + "\n" for r in rs)
    if run:
        (out / "run.json").write_text(json.dumps(run, indent=1))
    return report


# ---------------------------------------------------------------- plots
def plot_latency_cdf(results: dict[str, list[dict]], path: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = []
    for task, key, label in (("turn_taking", "latency_s", "turn-taking latency (M5)"),
                             ("interruption", "latency_s", "response after interruption (M5)"),
                             ("interruption", "stop_latency_s", "stop after interruption (M7 t_stop)")):
        vals = sorted(r[key] for r in results.get(task, []) if r.get(key) is not None)
        if vals:
            curves.append((label, vals))
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, vals in curves:
        ax.step(vals, np.arange(1, len(vals) + 1) / len(vals), where="post", label=label)
    ax.set_xlabel("seconds")
    ax.set_ylabel("fraction of samples")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_timeline(path: Path, title: str, user: list[tuple[float, float]],
                  agent: list[tuple[float, float]], words, marks: list[tuple[float, float, str]],
                  duration: float) -> Path:
    """User and agent activity of one sample, the agent's words, the task's spans."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6.0, duration * 0.6), 2.6))
    ax.broken_barh([(s, e - s) for s, e in user], (1.1, 0.8), color="tab:blue", label="user")
    ax.broken_barh([(s, e - s) for s, e in agent], (0.1, 0.8), color="tab:orange", label="agent")
    for s, e, name in marks:
        ax.axvspan(s, e, color="grey", alpha=0.15)
        ax.text(s, 2.05, name, fontsize=7, va="bottom")
    for w in words[:80]:
        ax.text(w.start, 0.5, w.text, fontsize=6, rotation=60, va="center", clip_on=True)
    ax.set_yticks([0.5, 1.5], ["agent", "user"])
    ax.set_xlim(0, duration)
    ax.set_ylim(0, 2.4)
    ax.set_xlabel("seconds")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


# ---------------------------------------------------------------- compare
def _leaves(d: dict, prefix: str = "") -> dict[str, float]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict):
            out.update(_leaves(v, key))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[key] = float(v)
    return out


def load_report(path: str | Path) -> dict:
    p = Path(path)
    p = p / "report.json" if p.is_dir() else p
    try:
        return json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{p}: not a benchmark report ({e})") from e


def compare(a: dict, b: dict, name_a: str = "A", name_b: str = "B") -> str:
    """Every figure of two reports side by side, with the ratio B / A."""
    la, lb = _leaves(a), _leaves(b)
    keys = [k for k in la if k in lb] + [k for k in la if k not in lb] + [k for k in lb if k not in la]
    width = max([len(k) for k in keys] + [6])
    rows = [f"{'figure':<{width}}  {name_a[-14:]:>14}  {name_b[-14:]:>14}  {'B/A':>7}"]
    for k in keys:
        x, y = la.get(k), lb.get(k)
        ratio = f"{y / x:7.2f}" if x not in (None, 0.0) and y is not None else "      –"
        rows.append(f"{k:<{width}}  {_fmt(x):>14}  {_fmt(y):>14}  {ratio}")
    return "\n".join(rows)
