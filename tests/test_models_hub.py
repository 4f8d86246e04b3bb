"""Model resolution: local paths, the Hugging Face cache, offline mode, clear errors."""
from __future__ import annotations

import pytest

from duplex.errors import ModelUnavailable
from duplex.models import hub


def test_paths_and_ids_are_told_apart(tmp_path):
    assert hub.local_path("llm", str(tmp_path)) == tmp_path
    assert hub.local_path("llm", "Qwen/Qwen2.5-0.5B-Instruct") is None  # a Hub id
    for typo in (str(tmp_path / "nope"), "./nope", "~/nope-model", "voice.onnx"):
        with pytest.raises(ModelUnavailable, match="no file or directory") as err:
            hub.local_path("tts", typo)
        assert typo in str(err.value) and "--set tts.model=" in str(err.value)
    with pytest.raises(ModelUnavailable, match="no model name"):
        hub.local_path("asr", " ")


def test_offline_mode_never_downloads_and_says_so(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.hf_offline()
    with pytest.raises(ModelUnavailable) as err:
        hub.snapshot("llm", "nobody/not-cached", ["*.json"])
    text = str(err.value)
    assert "'nobody/not-cached'" in text and "HF_HUB_OFFLINE" in text and "local path" in text
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert not hub.hf_offline()


def test_a_folder_added_to_the_cache_resolves_offline(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "config.json").write_text("{}")
    (src / "sub" / "voice.onnx").write_bytes(b"x")
    snap = hub.add_to_cache("someorg/model", src)
    assert hub.snapshot("llm", "someorg/model", ["*.json"]) == snap
    assert hub.hub_file("tts", "voice", "someorg/model", "sub/voice.onnx") == snap / "sub" / "voice.onnx"
    with pytest.raises(ModelUnavailable, match="has no file sub/other.onnx"):
        hub.hub_file("tts", "other", "someorg/model", "sub/other.onnx")
