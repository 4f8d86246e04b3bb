"""`duplex train tdm` / `duplex eval tdm` on a tiny random model, on CPU."""
from __future__ import annotations

import json

import pytest
from duplex.models.tiny import ensure_tiny_llm
from duplex.recipes.tdm.data import load_conversations, read_jsonl

from duplex.cli import main as cli
from duplex.config import LLMConfig


@pytest.fixture(scope="module")
def tiny_dir(model_cache):
    return ensure_tiny_llm(model_cache / "tiny-llm")


def _losses(out_dir):
    return [e["loss"] for e in json.loads((out_dir / "train_log.json").read_text()) if "loss" in e]


@pytest.mark.slow
def test_full_fine_tuning_lowers_the_loss_and_the_server_loads_the_result(tiny_dir, tmp_path):
    out = tmp_path / "full"
    # two conversations, batch of two: every step sees the same batch
    rc = cli(["train", "tdm", "--model", str(tiny_dir), "--data", "builtin", "--limit", "2",
              "--batch-size", "2", "--max-steps", "8", "--full", "--lr", "3e-3",
              "--slice-tokens", "6", "--logging-steps", "1", "--device", "cpu",
              "--output", str(out)])
    assert rc == 0
    losses = _losses(out)
    assert len(losses) == 8 and losses[-1] < 0.8 * losses[0]
    meta = json.loads((out / "duplex_tdm.json").read_text())
    assert meta["slice_tokens"] == 6 and meta["steps"] == 8 and meta["lora"] is False

    from duplex.models.tdm import DuplexEngine

    engine = DuplexEngine.load(LLMConfig(engine="tdm", model=str(out), mode="duplex", device="cpu",
                                         slice_tokens=6, temperature=0.0, batch_window_ms=0))
    try:
        sid = engine.open("You are a helpful voice assistant.")
        result = engine.step(sid, "What should I cook")
        assert result.state in ("speak", "idle", "eos") and 1 <= len(result.tokens) <= 6
    finally:
        engine.shutdown()

    report_path = tmp_path / "eval.json"
    assert cli(["eval", "tdm", "--model", str(out), "--limit", "6", "--device", "cpu",
                "--out", str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    assert report["slice_tokens"] == 6 and report["dialogues"] == 6
    assert 0.0 <= report["idle_accuracy"] <= 1.0 and report["decisions"] > 0
    assert report["cut_ins"] > 0 and 0.0 <= report["termination_within_slice"] <= 1.0
    assert report["response_loss"] > 0


@pytest.mark.slow
def test_lora_training_resumes_from_its_checkpoint(tiny_dir, tmp_path):
    out = tmp_path / "lora"
    common = ["train", "tdm", "--model", str(tiny_dir), "--data", "builtin", "--limit", "2",
              "--batch-size", "2", "--lr", "1e-2", "--slice-tokens", "6", "--logging-steps", "1",
              "--save-steps", "2", "--device", "cpu", "--output", str(out)]
    assert cli(common + ["--max-steps", "2"]) == 0
    assert (out / "checkpoints" / "checkpoint-2").is_dir()
    assert cli(common + ["--max-steps", "4"]) == 0
    meta = json.loads((out / "duplex_tdm.json").read_text())
    assert meta["lora"] is True and meta["steps"] == 4
    assert meta["resumed_from"].endswith("checkpoint-2")
    assert (out / "model.safetensors").is_file()  # merged: a plain model directory
    assert not (out / "adapter_config.json").exists()


def test_chat_data_sources_and_their_errors(tmp_path):
    convs = load_conversations("builtin")
    assert len(convs) >= 20 and all(c[0]["role"] == "user" for c in convs)
    good = tmp_path / "chats.jsonl"
    good.write_text(json.dumps({"conversation": convs[0]}) + "\n\n" + json.dumps(convs[1]) + "\n")
    assert read_jsonl(good, "conversation") == convs[:2]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(convs[0]) + "\n{oops\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:2: not valid JSON"):
        read_jsonl(bad)
    with pytest.raises(ValueError, match="a list of messages or an object with 'messages'"):
        good.write_text(json.dumps({"turns": []}) + "\n")
        read_jsonl(good)
    with pytest.raises(FileNotFoundError, match="no file"):
        load_conversations(str(tmp_path / "missing.jsonl"))
    with pytest.raises(SystemExit):
        cli(["train", "tdm", "--output", str(tmp_path / "x"), "--kinds", "basic,gossip"])
