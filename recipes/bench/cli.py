"""`duplex bench`: full-duplex behaviour benchmarks.

    duplex bench TASK... [--data DIR] (--url ws://HOST:PORT/ws | --in-process [--profile P])
                 --out DIR [--concurrency N] [--limit N] [--words events|asr] [--judge ...]
    duplex bench make-scenarios --out DIR [--timing switchboard] ...
    duplex bench compare RUN_A RUN_B
    duplex bench loop ...            (the server's own overhead: duplex.recipes.bench_loop)

TASKs: turn-taking, pause, backchannel, interruption, multi-turn, overlap
(FDB v1.5 categories other than interruption), or all. Samples are read from
--data in the Full-Duplex-Bench layout (see `make-scenarios`; without --data,
the built-in scenarios are rendered once into the duplex cache); multi-turn
reads Audio MultiChallenge rows from DIR/multi_turn/ (or DIR itself).
Each run writes to --out: report.json, report.md, samples.jsonl, run.json,
plots/ (latency CDF, per-sample timelines) and calls/TASK/ID/ (events.jsonl,
agent.wav, conversation.wav); each FDB sample also gets output.wav and
output.json beside its input.wav (unless --no-fdb-output).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from tqdm import tqdm

from duplex.bench.timeline import voiced_segments

from . import fdb
from . import report as R
from .runner import InProcessBackend, SocketBackend, run_samples, sample_result

TASK_ALIASES = {"turn-taking": "turn_taking", "turn_taking": "turn_taking", "pause": "pause",
                "backchannel": "backchannel", "interruption": "interruption",
                "multi-turn": "multi_turn", "multi_turn": "multi_turn", "overlap": "overlap"}
ALL = ("turn_taking", "pause", "backchannel", "interruption", "overlap", "multi_turn")
MARK = {"pause": "pause", "turn_taking": "turn end", "interruption": "user over agent",
        "overlap": "user over agent", "backchannel": "user"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="duplex bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("tasks", nargs="+", metavar="TASK",
                   help="turn-taking, pause, backchannel, interruption, multi-turn, overlap, all")
    p.add_argument("--data", help="samples in the Full-Duplex-Bench layout (default: the built-in "
                                  "scenarios, rendered once into the duplex cache)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="a running server, e.g. ws://127.0.0.1:8000/ws")
    where.add_argument("--in-process", action="store_true",
                       help="run the session core here on a virtual clock (fast)")
    p.add_argument("--token", default=os.environ.get("DUPLEX_TOKEN"),
                   help="the server's token, if it has one (env DUPLEX_TOKEN)")
    p.add_argument("--profile", default="default", help="in-process: config profile (test = offline)")
    p.add_argument("--config", help="in-process: TOML/JSON config file")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    p.add_argument("--model-time", default="measured", choices=["measured", "zero"],
                   help="in-process: model calls take their measured time, or none")
    p.add_argument("--out", required=True, help="directory for the report and call records")
    p.add_argument("--concurrency", type=int, default=1, help="sessions at once")
    p.add_argument("--limit", type=int, help="at most this many samples per task")
    p.add_argument("--tail", type=float, default=3.0, help="silence streamed after each input (s)")
    p.add_argument("--words", default="events", choices=["events", "asr"],
                   help="agent words from the server's text events, or from ASR of its audio")
    p.add_argument("--asr-model", default="base.en", help="--words asr: faster-whisper model")
    p.add_argument("--no-fdb-output", action="store_true",
                   help="do not write output.wav / output.json beside each input.wav")
    p.add_argument("--plots", type=int, default=4, help="timeline plots per task")
    p.add_argument("--judge", default="none", choices=["none", "openai", "hf"],
                   help="multi-turn: judge LLM engine")
    p.add_argument("--judge-url", default="", help="openai judge: base URL, e.g. http://host:8001/v1")
    p.add_argument("--judge-model", default="", help="judge model name / Hub id / directory")
    p.add_argument("--judge-key-env", default="OPENAI_API_KEY", help="env variable with the API key")
    return p


def parse_tasks(names: list[str]) -> list[str]:
    tasks = []
    for n in names:
        if n == "all":
            tasks += [t for t in ALL if t not in tasks]
        elif n in TASK_ALIASES:
            if TASK_ALIASES[n] not in tasks:
                tasks.append(TASK_ALIASES[n])
        else:
            raise ValueError(f"unknown task {n!r} (known: {', '.join(TASK_ALIASES)}, all)")
    return tasks


def make_backend(args):
    if args.url:
        return SocketBackend(args.url, args.token, args.tail)
    from duplex.models.registry import load_models

    from duplex.config import load_config

    cfg = load_config(args.profile, args.config, args.set)
    return InProcessBackend(cfg, load_models(cfg), args.model_time, args.tail)


def run_fdb_task(task: str, samples: list, backend, args, out: Path, word_source) -> list[dict]:
    results = []
    with tqdm(total=len(samples), desc=task, unit="sample") as bar:
        records = run_samples(samples, backend, args.concurrency, lambda: bar.update(1))
    for i, (sample, record) in enumerate(zip(samples, records)):
        res, tl = sample_result(sample, record, word_source)
        record.write(out / "calls" / task / sample.id)
        if not args.no_fdb_output:
            fdb.write_outputs(sample, record.agent_track(), record.output_rate,
                              tl.cropped(sample.duration()).words)
        if i < args.plots:
            audio, rate = sample.load_input()
            R.plot_timeline(out / "plots" / f"timeline_{task}_{sample.id}.png", f"{task}: {sample.id}",
                            voiced_segments(audio, rate), tl.segments, tl.words,
                            [(s, e, MARK[task]) for s, e in sample.spans], audio.size / rate)
        res["dir"] = str(sample.dir)
        results.append(res)
    return results


def run_multi_turn(backend, args, out: Path) -> tuple[list[dict], dict | None]:
    from . import multiturn as MT
    from .judge import JudgeConfig, build_judge
    from .speech import Speaker

    data = Path(args.data)
    src = data / "multi_turn" if (data / "multi_turn").exists() else data
    convs = MT.load_conversations(src, Speaker(), args.limit)
    judge = build_judge(JudgeConfig(args.judge, args.judge_url, args.judge_model, args.judge_key_env))
    with tqdm(total=len(convs), desc="multi_turn", unit="conversation") as bar:
        played = MT.play_all(convs, backend, args.concurrency, lambda: bar.update(1))
    results = []
    for conv, (record, starts) in zip(convs, played):
        record.write(out / "calls" / "multi_turn" / conv.id)
        results.append(MT.result(conv, record, starts, judge))
    return results, MT.summarize(results, getattr(judge, "name", None))


def default_data() -> Path:
    """The built-in scenarios (make-scenarios defaults), rendered once into the cache."""
    from duplex.models.hub import cache_root

    from .scenarios import make_scenarios

    path = cache_root() / "bench-scenarios"
    if not (path / "COMPLETE").is_file():
        print(f"duplex bench: rendering the built-in scenarios into {path} (once)", file=sys.stderr)
        make_scenarios(path)
        (path / "COMPLETE").write_text("rendered by `duplex bench` with the make-scenarios defaults\n")
    return path


def has_multi_turn(data: Path) -> bool:
    src = data / "multi_turn" if (data / "multi_turn").exists() else data
    return any(src.glob("*.jsonl")) or any(src.glob("*.parquet")) or (src / "dataset_info.json").exists()


def run(args, backend=None) -> dict:
    """Run the benchmark `args` describe (parsed by build_parser); a ready `backend`
    (e.g. models already loaded) replaces the one --url / --in-process would build.
    Returns the report."""
    tasks = parse_tasks(args.tasks)
    if args.concurrency < 1 or (args.limit is not None and args.limit < 1):
        raise ValueError("--concurrency and --limit must be >= 1")
    args.data = args.data or str(default_data())
    data, out = Path(args.data), Path(args.out)
    fdb_tasks = [t for t in tasks if t != "multi_turn"]
    found = fdb.find_samples(data) if fdb_tasks else {}
    samples = {t: found.get(t, [])[: args.limit] for t in fdb_tasks}
    explicit = set(parse_tasks([n for n in args.tasks if n != "all"]))
    for t in fdb_tasks:
        if not samples[t] and t in explicit:
            raise ValueError(f"no {t} samples under {data} (make some with `duplex bench make-scenarios`)")
    want_mt = "multi_turn" in tasks and (has_multi_turn(data) or "multi_turn" in explicit)
    if not any(samples.values()) and not want_mt:
        raise ValueError(f"no benchmark samples under {data}")
    backend = backend or make_backend(args)
    word_source = None
    if args.words == "asr":
        from .asr_words import WhisperWords

        word_source = WhisperWords(args.asr_model)
    t0 = time.time()
    results: dict[str, list[dict]] = {}
    for t in fdb_tasks:
        if samples[t]:
            results[t] = run_fdb_task(t, samples[t], backend, args, out, word_source)
    extra = {}
    if want_mt:
        results["multi_turn"], extra["multi_turn"] = run_multi_turn(backend, args, out)
    run_info = {"backend": backend.describe, "data": str(data), "words": args.words,
                "tasks": list(results), "wall_s": round(time.time() - t0, 1),
                "models": backend.model_names}
    rep = R.write_report(out, results, extra, run_info)
    R.plot_latency_cdf(results, out / "plots" / "latency_cdf.png")
    print(R.markdown(rep, run_info))
    print(f"report: {out / 'report.json'}")
    return rep


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "loop":
        from duplex.recipes.bench_loop import main as loop_main

        return loop_main(argv[1:])
    if argv and argv[0] == "make-scenarios":
        from .scenarios import main as make_main

        return make_main(argv[1:])
    if argv and argv[0] == "compare":
        if len(argv) != 3:
            print("usage: duplex bench compare RUN_A RUN_B (run directories or report.json files)",
                  file=sys.stderr)
            return 2
        try:
            a, b = R.load_report(argv[1]), R.load_report(argv[2])
        except ValueError as e:
            print(f"duplex bench compare: {e}", file=sys.stderr)
            return 2
        print(R.compare(a, b, argv[1], argv[2]))
        return 0
    parser = build_parser()
    args = parser.parse_args(argv)
    from duplex.errors import ModelUnavailable

    try:
        run(args)
        return 0
    except (ValueError, FileNotFoundError, ModelUnavailable, RuntimeError, ConnectionError, OSError) as e:
        print(f"duplex bench: {e}", file=sys.stderr)
        return 2
