"""The speech-text model served over a real socket (`session.pipeline = "flatten"`).

A tiny random LM is first overfitted on one short dialogue (the user says
"hello there", the agent answers "good morning"); the server then hears the
user's side over the socket and must answer with the agent's words and audio,
chunk by chunk, with no ASR, LLM or TTS in the loop.
"""
from __future__ import annotations

import asyncio

import numpy as np
import pytest
from conftest import ServerThread
from flatten_fixtures import codec_dir, llm_dir, one_thread  # noqa: F401 (fixtures)

from duplex.audio import StreamResampler, pcm16_to_float, float_to_pcm16
from duplex.clients.session_client import DuplexClient
from duplex.config import load_config
from duplex.flatten import Word

CODEC_RATE, CORE_RATE = 24000, 16000


@pytest.fixture(scope="module")
def trained(tmp_path_factory, llm_dir, codec_dir):
    """An overfitted model, and the 16 kHz user audio it was trained to answer."""
    from duplex.recipes.data.moshi_format import write_clip, write_manifest
    from duplex.recipes.data.synth_dialogues import render_channel
    from duplex.recipes.flatten.train import main

    root = tmp_path_factory.mktemp("flatten-served")
    user16 = render_channel([(0.1, 0.5, "hello"), (0.5, 0.9, "there")], 2.4, "en-gb", CORE_RATE)
    user16 = pcm16_to_float(float_to_pcm16(user16))  # what the client will send
    # The training clip holds the user audio exactly as the server's engine will see
    # it: 16 kHz from the socket, resampled chunk by chunk to the codec's rate.
    up = StreamResampler(CORE_RATE, CODEC_RATE)
    chunk = CORE_RATE * 160 // 1000
    user24 = np.concatenate([up(user16[i:i + chunk]) for i in range(0, user16.size, chunk)])
    agent_words = [(1.1, 1.5, "good"), (1.5, 2.0, "morning")]
    agent = render_channel(agent_words, user24.size / CODEC_RATE, "en-us+f3", CODEC_RATE)
    clip = write_clip(root / "d.wav", agent, user24, CODEC_RATE,
                      [Word(t, s, e) for s, e, t in agent_words],
                      [Word("hello", 0.1, 0.5), Word("there", 0.5, 0.9)])
    manifest = write_manifest(root / "train.jsonl", [clip])
    sets = ["lora=false", "learning_rate=3e-3", "batch_size=1", "grad_accum=1", "warmup_ratio=0",
            "gradient_checkpointing=false", "save_steps=100000", "logging_steps=50", "threads=1"]
    assert main(["--data", str(manifest), "--model", str(llm_dir), "--codec", str(codec_dir),
                 "--output", str(root / "run"), "--stage", "full", "--max-steps", "220"]
                + [x for s in sets for x in ("--set", s)]) == 0
    return root / "run" / "final", user16


@pytest.mark.slow
def test_the_served_model_answers_with_its_own_words_and_audio(trained, codec_dir):
    from duplex.models.registry import load_models

    model, user16 = trained
    cfg = load_config("test", sets=["session.pipeline=flatten", f"flatten.model={model}",
                                    f"flatten.codec={codec_dir}", "flatten.device=cpu",
                                    "flatten.temperature=0", "flatten.text_temperature=0"])
    srv = ServerThread(cfg, load_models(cfg))
    try:
        async def main():
            async with DuplexClient(srv.url) as c:
                assert c.session["models"]["pipeline"] == "flatten"
                return await c.call(user16, CORE_RATE, tail_s=0.5)

        rec = asyncio.run(asyncio.wait_for(main(), 60))
    finally:
        srv.stop()
    text = "".join(e["delta"] for _, e in rec.events
                   if e["type"] == "response.output_audio_transcript.delta")
    assert text.strip() == "good morning"
    assert [e["type"] for _, e in rec.events if e["type"].startswith("response.")][:1] == \
        ["response.created"]
    segments = rec.timeline.segments()
    assert segments and sum(b - a for a, b in segments) >= 0.6  # it spoke, at real time
