"""Per-call cost of the model engines on this machine (test-profile engines by default).

    python -m duplex.recipes.bench_models [--llm tiny-random] [--whisper DIR|size|tiny-random]
        [--piper VOICE|tiny-random] [--torch-threads 1] [--repeats 5]

Prints medians: Silero VAD ms per 20 ms frame, pocketsphinx real-time factor
and finish latency, espeak-ng time to first audio, LLM prefill and ms/token,
and optionally faster-whisper partial/final decode times and piper synthesis
("tiny-random" builds the random test models: their numbers are our overhead,
not what a real model costs).
Speech input is espeak-ng's (so nothing is downloaded).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import threading
import time

import numpy as np
import soundfile as sf

from duplex.audio import resample
from duplex.config import ASRConfig, LLMConfig, TTSConfig

TEXT = "what is the weather like in paris today, and will it rain tomorrow"


def speech16k(text: str = TEXT) -> np.ndarray:
    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        subprocess.run(["espeak-ng", "-v", "en-us", "-w", f.name, text], check=True, capture_output=True)
        audio, sr = sf.read(f.name, dtype="float32")
    return resample(audio, sr, 16000)


def timed(fn, repeats: int) -> tuple[float, object]:
    """Median wall time of `fn()` over `repeats` runs (after one warm-up), and its last result."""
    result = fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def bench_vad(audio: np.ndarray, repeats: int) -> None:
    from duplex.models.vad_silero import SileroVAD

    vad = SileroVAD()

    def run():
        vad.reset()
        return sum(len(vad.process(audio[i:i + 320])) for i in range(0, len(audio), 320))

    sec, frames = timed(run, repeats)
    print(f"silero vad        {1000 * sec / frames:7.3f} ms per 20 ms frame ({frames} frames)")


def bench_pocketsphinx(audio: np.ndarray, repeats: int) -> None:
    from duplex.models.asr_pocketsphinx import PocketsphinxASR

    asr = PocketsphinxASR(ASRConfig(engine="pocketsphinx", model="en-us"))
    finish_times = []

    def run():
        stream = asr.stream()
        for i in range(0, len(audio), 1600):
            stream.feed(audio[i:i + 1600])
        t = time.perf_counter()
        text = stream.finish()
        finish_times.append(time.perf_counter() - t)
        return text

    sec, text = timed(run, repeats)
    dur = len(audio) / 16000
    print(f"pocketsphinx      RTF {sec / dur:.3f} (100 ms feeds), finish {1000 * statistics.median(finish_times):.1f} ms"
          f"  -> {text!r}")


def bench_whisper(model: str, audio: np.ndarray, repeats: int) -> None:
    from duplex.models.asr_whisper import WhisperASR

    asr = WhisperASR(ASRConfig(engine="whisper", model=model))
    part, _ = timed(lambda: asr.transcribe(audio[:16000], "en", beam_size=1), repeats)
    full, text = timed(lambda: asr.transcribe(audio, "en", beam_size=asr.cfg.beam_size), repeats)
    print(f"faster-whisper    partial(1 s) {1000 * part:.0f} ms, final({len(audio) / 16000:.1f} s) "
          f"{1000 * full:.0f} ms  -> {text[:60]!r}")


def bench_tts(tts, label: str, repeats: int) -> None:
    def first():
        gen = tts.synthesize(TEXT)
        chunk = next(iter(gen))
        gen.close()
        return chunk

    ttfa, _ = timed(first, repeats)
    total, audio = timed(lambda: np.concatenate(list(tts.synthesize(TEXT))), repeats)
    print(f"{label:<17} first audio {1000 * ttfa:.1f} ms, RTF {total / (len(audio) / tts.sample_rate):.3f}")


def bench_llm(model: str, repeats: int) -> None:
    import torch

    from duplex.models.llm_hf import HFChatLLM

    llm = HFChatLLM(LLMConfig(model=model, temperature=0.0, seed=0, max_new_tokens=32))
    messages = [{"role": "system", "content": "You are a helpful voice assistant."},
                {"role": "user", "content": TEXT}]

    def run():
        t0 = time.perf_counter()
        stamps = [time.perf_counter() for _ in llm.generate(messages, cancel=threading.Event())]
        return t0, stamps

    run()  # warm-up
    firsts, steps = [], []
    for _ in range(repeats):
        t0, stamps = run()
        firsts.append(stamps[0] - t0)
        steps.append((stamps[-1] - stamps[0]) / max(1, len(stamps) - 1))
    print(f"llm {model:<13} first token {1000 * statistics.median(firsts):.1f} ms (prompt "
          f"{len(llm.prompt_ids(messages))} tokens), {1000 * statistics.median(steps):.1f} ms/token "
          f"(torch threads {torch.get_num_threads()})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", default="tiny-random")
    parser.add_argument("--whisper", default="",
                        help="faster-whisper model (size, Hub id or CT2 dir; tiny-random: build one)")
    parser.add_argument("--piper", default="", help="piper voice name or .onnx path (tiny-random: build one)")
    parser.add_argument("--torch-threads", type=int, default=0, help="torch intra-op threads (0: torch default)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    tmp = tempfile.TemporaryDirectory()
    if args.whisper == "tiny-random":
        from duplex.models.tiny import build_tiny_whisper_ct2

        args.whisper = str(build_tiny_whisper_ct2(f"{tmp.name}/whisper"))
    if args.piper == "tiny-random":
        from duplex.models.tiny import build_tiny_piper_voice

        args.piper = str(build_tiny_piper_voice(f"{tmp.name}/piper"))
    audio = speech16k()
    print(f"speech: {len(audio) / 16000:.2f} s of espeak-ng; medians of {args.repeats} runs")
    bench_vad(audio, args.repeats)
    bench_pocketsphinx(audio, args.repeats)
    if args.whisper:
        bench_whisper(args.whisper, audio, args.repeats)
    from duplex.models.tts_espeak import EspeakTTS

    bench_tts(EspeakTTS(TTSConfig(engine="espeak", voice="en-us")), "espeak-ng", args.repeats)
    if args.piper:
        from duplex.models.tts_piper import PiperTTS

        bench_tts(PiperTTS(TTSConfig(engine="piper", model=args.piper)), "piper", args.repeats)
    bench_llm(args.llm, args.repeats)
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
