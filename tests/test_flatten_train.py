"""The flatten recipe: its loss, a CPU smoke run of `duplex train flatten`
(LoRA, checkpoints, resume), and a tiny model that overfits one dialogue and
then regenerates it, tokens and text, through the streaming engine.

Models are the tiny random test LM (duplex.models.tiny) and a tiny random
Mimi: nothing can be downloaded here."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from flatten_fixtures import codec_dir, llm_dir, one_thread  # noqa: F401 (fixtures)

from duplex.config import FlattenConfig
from duplex.flatten import Word

RATE = 24000


@pytest.fixture(scope="module")
def short_dialogue(tmp_path_factory):
    """2.4 s: the user says "hello there", then the agent "good morning"."""
    from duplex.recipes.data.moshi_format import write_clip, write_manifest
    from duplex.recipes.data.synth_dialogues import render_channel

    root = tmp_path_factory.mktemp("dialogue")
    user = [(0.1, 0.5, "hello"), (0.5, 0.9, "there")]
    agent = [(1.1, 1.5, "good"), (1.5, 2.0, "morning")]
    clip = write_clip(root / "d.wav", render_channel(agent, 2.4, "en-us+f3", RATE),
                      render_channel(user, 2.4, "en-gb", RATE), RATE,
                      [Word(t, s, e) for s, e, t in agent], [Word(t, s, e) for s, e, t in user])
    return write_manifest(root / "train.jsonl", [clip])


def test_loss_is_the_weighted_mean_of_text_plus_that_of_audio(llm_dir):
    from duplex.recipes.flatten.trainer import flat_loss
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(llm_dir)
    ids = torch.tensor([[5, 6, 7, 8, 9, 10], [11, 12, 13, 14, 15, 16]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])  # row 2 is padded
    weights = torch.tensor([[0, 1, .5, 0, 100, 1], [0, 0, 1, 2, 0, 0]])
    groups = torch.tensor([[0, 1, 1, 0, 2, 2], [0, 0, 1, 2, 0, 0]])
    loss, parts = flat_loss(model, ids, mask, weights, groups)
    # by hand, from the full logits: position i predicts token i + 1
    logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), -1)
    def nll(b, i):
        return -logp[b, i - 1, ids[b, i]]

    text = (1 * nll(0, 1) + .5 * nll(0, 2) + 1 * nll(1, 2)) / 2.5
    audio = (100 * nll(0, 4) + 1 * nll(0, 5) + 2 * nll(1, 3)) / 103
    assert parts["text"] == pytest.approx(float(text), rel=1e-4)
    assert parts["audio"] == pytest.approx(float(audio), rel=1e-4)
    assert float(loss) == pytest.approx(float(text + audio), rel=1e-4)
    loss.backward()  # and it trains
    assert model.lm_head.weight.grad.abs().sum() > 0


@pytest.mark.slow
def test_cli_smoke_run_trains_with_lora_checkpoints_and_resumes(tmp_path, llm_dir, codec_dir,
                                                                short_dialogue):
    from duplex.models.flatten import FlattenEngine
    from duplex.recipes.data.moshi_format import read_manifest, write_manifest

    from duplex.cli import main

    (clip,) = read_manifest(short_dialogue)
    data = write_manifest(tmp_path / "train.jsonl", [clip, clip], absolute=True)  # a batch of 2
    out = tmp_path / "run"
    args = ["train", "flatten", "--config", "tiny", "--data", str(data), "--model", str(llm_dir),
            "--codec", str(codec_dir), "--output", str(out)]
    assert main(args + ["--max-steps", "2"]) == 0
    first = json.loads((out / "throughput.json").read_text())
    assert first["steps"] == 2 and first["lora"] and first["tokens"] > 0
    assert (out / "checkpoint-2").is_dir() and list((out / "codes").glob("*.npz"))
    assert main(args + ["--max-steps", "3", "--resume"]) == 0
    resumed = json.loads((out / "throughput.json").read_text())
    # the second run went on from step 2: it trained one step, not three
    assert resumed["steps"] == 3 and resumed["tokens"] == first["tokens"] // 2
    assert np.isfinite(resumed["train_loss"]) and resumed["tokens_per_s"] > 0
    engine = FlattenEngine.load(FlattenConfig(model=str(out / "final"), codec=str(codec_dir),
                                              device="cpu"))
    out_step = engine.stream().step(np.zeros(engine.chunk_samples * 3, np.float32))
    assert out_step.chunks >= 2 and len(out_step.audio) == out_step.chunks * 3840


@pytest.mark.slow
def test_tiny_model_overfits_one_dialogue_and_regenerates_it_greedily(
        tmp_path, llm_dir, codec_dir, short_dialogue):
    from duplex.models.flatten import FlattenEngine
    from duplex.recipes.data.moshi_format import read_manifest
    from duplex.recipes.flatten.data import encode_clip
    from duplex.recipes.flatten.train import main

    from duplex.flatten import flatten_duplex

    out = tmp_path / "run"
    sets = ["lora=false", "learning_rate=3e-3", "batch_size=1", "grad_accum=1", "warmup_ratio=0",
            "gradient_checkpointing=false", "save_steps=100000", "logging_steps=50", "threads=1"]
    assert main(["--data", str(short_dialogue), "--model", str(llm_dir), "--codec",
                 str(codec_dir), "--output", str(out), "--stage", "full", "--max-steps", "220"]
                + [x for s in sets for x in ("--set", s)]) == 0

    engine = FlattenEngine.load(FlattenConfig(model=str(out / "final"), codec=str(codec_dir),
                                              device="cpu", input_rate=RATE, temperature=0.0,
                                              text_temperature=0.0))
    (clip,) = read_manifest(short_dialogue)
    enc = encode_clip(clip, engine.codec, 160)
    target = flatten_duplex(enc.agent_codes, enc.user_codes, enc.agent_words, enc.user_words,
                            vocab=engine.vocab, layout=engine.layout, tokenize=engine.tokenize)
    _, user_audio, _ = clip.load_audio()
    stream = engine.stream()
    n = engine.chunk_samples
    outs = [stream.step(user_audio[i:i + n]) for i in range(0, len(user_audio), n)]
    tokens = np.concatenate([o.tokens for o in outs])
    # from the user's audio alone, the model writes back the agent's text slots and codes
    np.testing.assert_array_equal(tokens, target.tokens)
    assert "".join(o.text for o in outs) == "good morning"
    agent_audio = np.concatenate([o.audio for o in outs])
    np.testing.assert_allclose(agent_audio, engine.codec.decode(enc.agent_codes), atol=1e-4)
