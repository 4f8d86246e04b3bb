"""`python -m duplex.recipes.vap.compare`: the VAP policy against silence
thresholds on Switchboard dialogues replayed as voice-activity streams.

Every mutual silence of at least min_gap_ms (the earliest any policy here
answers) that follows one speaker's speech is a decision point, with that
speaker as the "user" and the other as the "agent". If the user speaks next
it is a hold, otherwise a shift. A policy's take-over time d (from the start
of the silence) is:
- silence threshold T: d = T (it fires once T ms of silence have passed);
- VAP (VAPPolicy): the first frame with p_now[agent] >= shift_threshold after
  min_gap_ms, or with p_now[agent] >= hold_threshold after
  vap_end_silence_ms, else max_silence_ms. The model runs on the stream the
  agent would see: the real past and, from the silence on, a silent agent.
Figures: rate of taking the floor in a hold (d before the user resumes) and
the response gap on shifts (d). VAP's three parameters are chosen on
validation dialogues for each false take-over budget (that of each silence
threshold) and then measured on the test dialogues. The real VAPPolicy /
VADPolicy classes are replayed on a sample of decision points to check the
vectorised timings.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from duplex.config import TurnConfig
from duplex.models.vap.checkpoint import load_model
from duplex.turn.base import Frame, TurnEventKind, VapOutput
from duplex.turn.vad_policy import VADPolicy
from duplex.turn.vap_policy import VAPPolicy
from duplex.vap.events import ONLY_0, ONLY_1, SILENCE, dialog_states, extract_events, fill_pauses, islands

from . import scoring
from .data import switchboard_va

FRAME_MS = 20


def decision_points(va: np.ndarray, min_context: int = 150, min_ms: int = 0) -> list[tuple]:
    """(silence start, silence end, user, kind) for silences between single-speaker stretches."""
    s, d, st = islands(dialog_states(va))
    out = []
    for i in range(1, len(st) - 1):
        if st[i] != SILENCE or st[i - 1] not in (ONLY_0, ONLY_1) or st[i + 1] not in (ONLY_0, ONLY_1):
            continue
        if s[i] < min_context or d[i] * FRAME_MS < min_ms:
            continue
        user = 0 if st[i - 1] == ONLY_0 else 1
        nxt = 0 if st[i + 1] == ONLY_0 else 1
        out.append((int(s[i]), int(s[i] + d[i]), user, "hold" if nxt == user else "shift"))
    return out


@torch.no_grad()
def counterfactual_probs(model, va: np.ndarray, points: list[tuple], history: int, after: int,
                         batch: int = 64) -> dict[str, np.ndarray]:
    """p_now / p_future / p_bc (n_points, after, 2) from each silence start on, in user/agent
    order, with the agent channel silenced from the silence start."""
    xs = []
    for s, _, user, _ in points:
        x = np.zeros((history + after, 2), np.float32)  # zeros: before the dialogue / after its end
        a, b = max(0, s - history), min(len(va), s + after)
        x[history - (s - a): history + (b - s)] = va[a:b][:, [user, 1 - user]]
        x[history:, 1] = 0.0  # the agent has not answered yet
        xs.append(x)
    out: dict[str, list] = {"p_now": [], "p_future": [], "p_bc": []}
    for i in range(0, len(xs), batch):
        x = torch.tensor(np.stack(xs[i: i + batch]))
        logits = model(x)["logits"][:, history:]
        for k, v in model.probabilities(logits).items():
            out[k].append(v.numpy())
    return {k: np.concatenate(v) if v else np.zeros((0, after, 2)) for k, v in out.items()}


def vap_takeover_ms(p_shift: np.ndarray, cfg: TurnConfig) -> np.ndarray:
    """Vectorised VAPPolicy end-of-turn time per point, ms after the silence start
    (frame j after the silence start ends (j + 1) * 20 ms into it)."""
    t = (np.arange(p_shift.shape[1]) + 1) * FRAME_MS
    awake = t >= cfg.hangover_ms  # the tracker reports the silence after its hangover
    ok = awake & (t >= cfg.min_gap_ms) & (p_shift >= cfg.shift_threshold)
    ok |= awake & (t >= cfg.vap_end_silence_ms) & (p_shift >= cfg.hold_threshold)
    ok |= t >= cfg.max_silence_ms
    first = np.where(ok.any(1), ok.argmax(1), len(t) - 1)
    return t[first].astype(float)


GRID = {"shift_threshold": (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 1.01),
        "vap_end_silence_ms": (200, 300, 400, 500, 600, 700, 800, 1000, 1200),
        "hold_threshold": (0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4)}


def tune(p_shift, sil, is_shift, cfg: TurnConfig, budget: float) -> TurnConfig:
    """The VAP parameters with the lowest mean gap on shifts whose rate of taking
    the floor in a hold stays within `budget` (max_silence_ms alone if none)."""
    best, best_gap = replace(cfg, shift_threshold=1.01, hold_threshold=1.01), float("inf")
    for a in GRID["shift_threshold"]:
        for t_mid in GRID["vap_end_silence_ms"]:
            for b in GRID["hold_threshold"]:
                c = replace(cfg, shift_threshold=a, vap_end_silence_ms=t_mid, hold_threshold=b)
                r = summarize(vap_takeover_ms(p_shift, c), sil, is_shift)
                if r["false_takeover"] <= budget and r["gap_mean_ms"] < best_gap:
                    best, best_gap = c, r["gap_mean_ms"]
    return best


def summarize(d_ms: np.ndarray, sil_ms: np.ndarray, is_shift: np.ndarray) -> dict:
    holds = ~is_shift
    takeover_in_hold = (d_ms[holds] < sil_ms[holds]).mean() if holds.any() else float("nan")
    g = d_ms[is_shift]
    return {"false_takeover": round(float(takeover_in_hold), 4),
            "gap_median_ms": float(np.median(g)), "gap_mean_ms": round(float(g.mean()), 1),
            "gap_p90_ms": float(np.percentile(g, 90)),
            "answered_before_human": round(float((g < sil_ms[is_shift]).mean()), 4)}


def silence_budget(T: float, sil_ms: np.ndarray, is_shift: np.ndarray) -> float:
    """How often a T ms silence timeout takes the floor in a hold: the budget to match."""
    return summarize(np.full(len(sil_ms), float(T)), sil_ms, is_shift)["false_takeover"]


def replay_check(model_points, cfg: TurnConfig, thresholds_ms=(300, 500, 800)) -> dict:
    """Run the real policy classes over a sample of points; count agreements with
    the vectorised take-over times."""
    agree, near, total = 0, 0, 0
    for va_u, s, p_now, d_vap, d_sil in model_points:
        a = max(0, s - 150)
        pols = [("vap", VAPPolicy(cfg), d_vap)] + [
            (f"silence_{T}", VADPolicy(replace(cfg, end_silence_ms=T)), d) for T, d in zip(thresholds_ms, d_sil)]
        for name, pol, expected in pols:
            got = None
            for f in range(a, s + p_now.shape[0]):
                vap = None
                if name == "vap" and f >= s:
                    pn = p_now[f - s]
                    vap = VapOutput(p_now=(float(pn[0]), float(pn[1])), p_future=(0.5, 0.5))
                elif name == "vap":  # before the silence: the user is talking; no shift projected
                    vap = VapOutput(p_now=(1.0, 0.0), p_future=(1.0, 0.0))
                user_p = float(va_u[f, 0]) if f < s else 0.0
                agent = bool(va_u[f, 1]) if f < s else False
                evs = pol.update(Frame(t=(f + 1) * FRAME_MS / 1000, p_user=user_p,
                                       agent_active=agent, vap=vap))
                if f >= s and any(e.kind == TurnEventKind.END_OF_TURN for e in evs):
                    got = ((f + 1) - s) * FRAME_MS
                    break
            total += 1
            agree += got is not None and abs(got - expected) < 1e-6
            near += got is not None and abs(got - expected) <= FRAME_MS + 1e-6
    return {"checked": total, "agree": agree, "agree_within_a_frame": near}


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="python -m duplex.recipes.vap.compare", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", default="test")
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--data", default=None)
    ap.add_argument("--limit", type=int, default=None, help="only the first N dialogues")
    ap.add_argument("--val-limit", type=int, default=60,
                    help="validation dialogues the VAP parameters are chosen on")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--history-s", type=float, default=6.0,
                    help="context before a silence for the counterfactual runs")
    ap.add_argument("--out", default=None, help="write compare.json and compare.png here")
    ap.add_argument("--check", type=int, default=200, help="points replayed through the real policies")
    ap.add_argument("--no-progress", action="store_true")
    return ap.parse_args(argv)


def point_probs(model, va: np.ndarray, after: int, history: int, min_ms: int) -> tuple[list, np.ndarray]:
    """Decision points of one dialogue and p_now (n, after, 2) from each silence on.

    Up to the end of the silence the real stream *is* the counterfactual one
    (nobody speaks), so one full pass per user channel gives it exactly; only
    shifts answered later than the human need a counterfactual run (with
    `history` frames of context) for the frames after the human answered."""
    pts_all, p_all = [], []
    for user in (0, 1):
        pts = [p for p in decision_points(va, min_ms=min_ms) if p[2] == user]
        if not pts:
            continue
        x = va[:, [user, 1 - user]].astype(np.float32)
        p_now = scoring.predict(model, x)["p_now"]
        p_now = np.concatenate([p_now, np.full((after, 2), 0.5)])  # past the end: undecided
        pp = np.stack([p_now[s: s + after] for s, *_ in pts])
        late = [i for i, (s, e, _, k) in enumerate(pts) if k == "shift" and e - s < after]
        if late:
            cf = counterfactual_probs(model, va, [pts[i] for i in late], history, after)["p_now"]
            for j, i in enumerate(late):
                s, e = pts[i][0], pts[i][1]
                pp[i, e - s:] = cf[j, e - s:]
        pts_all += pts
        p_all.append(pp)
    return pts_all, (np.concatenate(p_all) if p_all else np.zeros((0, after, 2)))


@dataclass
class Points:
    p_shift: np.ndarray  # (n, after): p_now[agent] from the silence start on
    sil: np.ndarray  # (n,) silence length, ms
    is_shift: np.ndarray  # (n,) bool
    samples: list  # (va in user/agent order, silence start, p_now) for the replay check


def collect_points(model, vas, cfg: TurnConfig, history: int, progress: bool = True,
                   keep: int = 0, desc: str = "replay") -> Points:
    after = cfg.max_silence_ms // FRAME_MS + 1
    sil, shift, ps, samples = [], [], [], []
    for va in tqdm(vas, desc=desc, disable=not progress, unit="dlg"):
        pts, pn = point_probs(model, va, after, history, cfg.min_gap_ms)
        if not pts:
            continue
        ps.append(pn[:, :, 1])
        sil.append(np.array([(e - s) * FRAME_MS for s, e, _, _ in pts], float))
        shift.append(np.array([k == "shift" for *_, k in pts]))
        for i, (s, e, user, _) in enumerate(pts[: max(0, keep - len(samples))]):
            samples.append((va[:, [user, 1 - user]], s, pn[i]))
    if not ps:
        raise SystemExit("no decision points in these dialogues")
    return Points(np.concatenate(ps), np.concatenate(sil), np.concatenate(shift), samples)


def _params(c: TurnConfig) -> dict:
    return {k: getattr(c, k) for k in ("shift_threshold", "vap_end_silence_ms", "hold_threshold")}


def run(model, test_vas, val_vas, cfg: TurnConfig, history: int, progress: bool = True,
        check: int = 0, silence_ms=(300, 500, 800)) -> dict:
    val = collect_points(model, val_vas, cfg, history, progress, desc="replay val")
    test = collect_points(model, test_vas, cfg, history, progress, keep=check, desc="replay test")
    res: dict = {"points": int(len(test.sil)), "shifts": int(test.is_shift.sum()),
                 "holds": int((~test.is_shift).sum()), "val_points": int(len(val.sil)),
                 "human_gap_median_ms": float(np.median(test.sil[test.is_shift])),
                 "config": {k: getattr(cfg, k) for k in ("min_gap_ms", "max_silence_ms", "hangover_ms")}}

    def row(name, d, **extra):
        return dict(policy=name, **summarize(d, test.sil, test.is_shift), **extra)

    d_default = vap_takeover_ms(test.p_shift, cfg)
    table = [row("vap (default config)", d_default, params=_params(cfg))]
    gaps = {"vap default": d_default[test.is_shift].tolist()}
    tuned: dict[int, TurnConfig] = {}

    def matched(T: int) -> TurnConfig:
        """The VAP parameters tuned on val for the take-over budget of a T ms timeout."""
        if T not in tuned:
            budget = silence_budget(T, val.sil, val.is_shift)
            tuned[T] = tune(val.p_shift, val.sil, val.is_shift, cfg, budget)
        return tuned[T]

    for T in silence_ms:
        d = np.full(len(test.sil), float(T))
        c = matched(T)
        d_vap = vap_takeover_ms(test.p_shift, c)
        table += [row(f"silence {T} ms", d), row(f"vap matched to {T} ms", d_vap, params=_params(c))]
        gaps[f"silence {T}"] = d[test.is_shift].tolist()
        gaps[f"vap ~{T}"] = d_vap[test.is_shift].tolist()
    res["table"], res["gaps_ms"] = table, gaps
    res["silence_sweep"], res["vap_sweep"] = [], []
    for T in (100, 200, 300, 400, 500, 600, 700, 800, 1000, 1200):
        res["silence_sweep"].append(dict(threshold_ms=T, **summarize(
            np.full(len(test.sil), float(T)), test.sil, test.is_shift)))
        c = matched(T)
        res["vap_sweep"].append(dict(budget_of_ms=T, params=_params(c), **summarize(
            vap_takeover_ms(test.p_shift, c), test.sil, test.is_shift)))
    if test.samples:
        checked = [(va_u, s, pn, vap_takeover_ms(pn[None, :, 1], cfg)[0], [float(T) for T in silence_ms])
                   for va_u, s, pn in test.samples]
        res["policy_replay_check"] = replay_check(checked, cfg, silence_ms)
    return res


def opportunity_rates(model, vas, thresholds=(0.2, 0.25, 0.3, 0.35, 0.4, 0.5), gap_ms: int = 4000,
                      progress: bool = False) -> dict:
    """How often VAPPolicy would offer a backchannel opportunity while the user holds
    the floor (pause-filled, user alone), per minute of that floor, against how
    often the human listener backchannelled there, and the share of opportunities
    that a human backchannel followed within 1 s."""
    floor_min, human = 0.0, 0
    count = {th: 0 for th in thresholds}
    hits = {th: 0 for th in thresholds}
    for va in tqdm(vas, desc="opportunities", disable=not progress, unit="dlg"):
        for user in (0, 1):
            x = va[:, [user, 1 - user]]
            p_bc = scoring.predict(model, x.astype(np.float32))["p_bc"][:, 1]
            floor = dialog_states(fill_pauses(x)) == ONLY_0
            bcs = extract_events(x)["backchannel"]
            onsets = np.array([a for a, _, spk in bcs if spk == 1], int)
            floor_min += floor.sum() / 50 / 60
            human += int(sum(floor[max(0, a - 1)] for a in onsets))
            for th in thresholds:
                last = -10 ** 9
                for f in np.flatnonzero(floor & (p_bc >= th)):
                    if (f - last) * FRAME_MS >= gap_ms:
                        last = f
                        count[th] += 1
                        hits[th] += bool(((onsets >= f) & (onsets <= f + 50)).any())
    return {"floor_minutes": round(floor_min, 1), "human_backchannels_per_min": round(human / floor_min, 2),
            "opportunities": [{"threshold": th, "per_min": round(count[th] / floor_min, 2),
                               "followed_by_human_bc": round(hits[th] / max(count[th], 1), 3)}
                              for th in thresholds]}


def _plain(o):
    """numpy scalars -> Python numbers for json."""
    return o.item() if hasattr(o, "item") else str(o)


def markdown_table(res: dict) -> str:
    lines = ["| policy | taking the floor in a hold | median gap (ms) | mean gap (ms) | p90 gap (ms) "
             "| shifts answered before the human | VAP parameters |", "|---|---|---|---|---|---|---|"]
    for r in res["table"]:
        p = r.get("params")
        ps = (f"shift >= {p['shift_threshold']:g}; after {p['vap_end_silence_ms']} ms unless "
              f"< {p['hold_threshold']:g}") if p else ""
        lines.append(f"| {r['policy']} | {r['false_takeover']:.1%} | {r['gap_median_ms']:.0f} | "
                     f"{r['gap_mean_ms']:.0f} | {r['gap_p90_ms']:.0f} | {r['answered_before_human']:.1%} "
                     f"| {ps} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else list(argv))
    torch.set_num_threads(args.threads)
    t0 = time.time()
    model = load_model(args.checkpoint)
    if model.cfg.input != "va":
        raise SystemExit("the comparison replays voice activity: use a voice-activity checkpoint")
    vas = switchboard_va(args.split, args.data, args.limit)
    val_vas = switchboard_va("val", args.data, args.val_limit)
    res = run(model, vas, val_vas, TurnConfig(), int(args.history_s * 50), not args.no_progress,
              args.check)
    res["dialogues"], res["split"] = len(vas), args.split
    res["seconds"] = round(time.time() - t0, 1)
    if args.out:
        from .plots import plot_comparison

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "compare.json").write_text(json.dumps(res, default=_plain) + "\n")
        plot_comparison(res, out / "compare.png")
    slim = {k: v for k, v in res.items() if k != "gaps_ms"}
    print(json.dumps(slim, indent=2, default=_plain))
    print(markdown_table(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
