"""HF chat LLM engine on the tiny random model built locally (no weights can be downloaded here)."""
from __future__ import annotations

import json
import re
import threading

import pytest

from duplex.config import LLMConfig
from duplex.errors import ModelUnavailable
from duplex.interfaces import LLM
from duplex.models import hub
from duplex.models.llm_hf import HFChatLLM, IncrementalDetokenizer
from duplex.models.tiny import MARKER, WORDS, ensure_tiny_llm

CHAT = [{"role": "system", "content": "You are a helpful voice assistant."},
        {"role": "user", "content": "what is the weather like in paris"}]


@pytest.fixture(scope="module")
def duplex_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("duplex-cache")


@pytest.fixture(scope="module")
def llm(duplex_cache):
    mp = pytest.MonkeyPatch()
    mp.setenv("DUPLEX_CACHE", str(duplex_cache))  # keep the test's build out of ~/.cache
    try:
        yield HFChatLLM(LLMConfig(model="tiny-random", temperature=0.0, seed=0, max_new_tokens=24))
    finally:
        mp.undo()


def run(llm, messages=CHAT, **kw):
    return list(llm.generate(messages, cancel=kw.pop("cancel", threading.Event()), **kw))


def test_tiny_model_is_built_once_in_the_cache_and_announced(llm, duplex_cache, capsys):
    path = duplex_cache / "tiny-random-llm"
    assert json.loads((path / MARKER).read_text())["random_weights"] is True
    before = (path / "model.safetensors").stat().st_mtime_ns
    assert ensure_tiny_llm(path) == path and (path / "model.safetensors").stat().st_mtime_ns == before
    from transformers import AutoModelForCausalLM

    params = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(path).parameters())
    assert 50_000 < params < 1_000_000
    mp = pytest.MonkeyPatch()
    mp.setenv("DUPLEX_CACHE", str(duplex_cache))
    try:
        HFChatLLM(LLMConfig(model="tiny-random"))
    finally:
        mp.undo()
    assert "RANDOM WEIGHTS" in capsys.readouterr().err


def test_concurrent_builds_end_with_one_valid_model(tmp_path):
    target = tmp_path / "tiny"
    results, errors = [], []

    def build():
        try:
            results.append(ensure_tiny_llm(target))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and results == [target, target]
    assert (target / MARKER).is_file() and (target / "config.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["tiny"]  # no temp dirs left behind


def test_greedy_stream_is_the_same_as_transformers_generate(llm):
    assert isinstance(llm, LLM)
    deltas = run(llm)
    assert all(isinstance(d, str) and d for d in deltas)
    text = "".join(deltas)
    prompt = llm.prompt_ids(CHAT)
    import torch

    ref = llm.model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                             do_sample=False, max_new_tokens=24)
    assert text == llm.tokenizer.decode(ref[0, len(prompt):], skip_special_tokens=True)
    # The tiny model speaks real words so TTS always has something to say.
    words = re.findall(r"[a-z]+", text.lower())
    assert len(words) >= 3 and set(words) <= set(WORDS)


def test_stops_at_max_new_tokens_and_on_cancel(llm):
    three = run(llm, max_new_tokens=3)
    assert 1 <= len(three) <= 3 and "".join(run(llm)).startswith("".join(three))
    cancel = threading.Event()
    got = []
    for delta in llm.generate(CHAT, cancel=cancel):
        got.append(delta)
        cancel.set()  # barge-in right after the first delta
    assert len(got) == 1
    cancel = threading.Event()
    cancel.set()
    assert run(llm, cancel=cancel) == []


def test_sampling_is_reproducible_with_a_seed(llm):
    def sample(seed):
        cfg = LLMConfig(model="tiny-random", temperature=1.5, top_p=0.95, seed=seed, max_new_tokens=16)
        llm.cfg = cfg
        try:
            return "".join(run(llm))
        finally:
            llm.cfg = LLMConfig(model="tiny-random", temperature=0.0, seed=0, max_new_tokens=24)

    a, b = sample(1), sample(1)
    assert a == b
    assert any(sample(s) != a for s in (2, 3, 4))
    assert sample(1) != "".join(run(llm, max_new_tokens=16))  # not just greedy


def test_concurrent_generations_do_not_interfere(llm):
    expected = "".join(run(llm))
    other = [{"role": "user", "content": "tell me a story"}]
    expected_other = "".join(run(llm, other))
    out: dict[int, str] = {}

    def worker(i):
        out[i] = "".join(run(llm, CHAT if i % 2 == 0 else other))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == {0: expected, 1: expected_other, 2: expected, 3: expected_other}


def test_detokenizer_never_emits_broken_utf8(llm):
    text = "héllo ☃ wörld 😀 ok"
    ids = llm.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) > len(text.split())  # multi-byte characters span several byte tokens
    detok = IncrementalDetokenizer(llm.tokenizer)
    deltas = [d for d in (detok.push(i) for i in ids) if d] + [detok.flush()]
    assert all("\ufffd" not in d for d in deltas)
    assert "".join(deltas) == text


def test_bad_requests_and_missing_models(llm, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="role"):
        llm.generate([{"content": "hi"}], cancel=threading.Event())
    with pytest.raises(ValueError, match="at least one"):
        llm.generate([], cancel=threading.Event())
    with pytest.raises(ValueError, match="max_new_tokens"):
        llm.generate(CHAT, cancel=threading.Event(), max_new_tokens=0)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailable, match="nobody/no-such-chat-model"):
        HFChatLLM(LLMConfig(model="nobody/no-such-chat-model"))
    with pytest.raises(ModelUnavailable, match="no file or directory"):
        HFChatLLM(LLMConfig(model=str(tmp_path / "missing")))


def test_hub_id_resolves_from_the_hf_cache_offline(llm, tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.add_to_cache("someorg/tiny-chat", llm.model.name_or_path)  # as a download would leave it
    cached = HFChatLLM(LLMConfig(model="someorg/tiny-chat", temperature=0.0, max_new_tokens=24))
    assert cached.name == "someorg/tiny-chat"
    assert "".join(run(cached)) == "".join(run(llm))


def test_device_and_dtype_choices():
    import torch

    from duplex.models.llm_hf import pick_device, pick_dtype

    assert pick_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert pick_dtype("auto", "cpu") is torch.float32
    assert pick_dtype("auto", "cuda:0") is torch.bfloat16
    assert pick_dtype("float16", "cpu") is torch.float16
    with pytest.raises(ValueError, match="llm.dtype"):
        pick_dtype("float99", "cpu")
    with pytest.raises(ValueError, match="llm.device"):
        pick_device("tpu-ish")


@pytest.mark.gpu
def test_runs_on_cuda_in_bfloat16(duplex_cache, monkeypatch):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    monkeypatch.setenv("DUPLEX_CACHE", str(duplex_cache))
    gpu = HFChatLLM(LLMConfig(model="tiny-random", temperature=0.8, seed=3, max_new_tokens=12))
    assert gpu.device == "cuda" and gpu.model.dtype is torch.bfloat16
    first, again = "".join(run(gpu)), "".join(run(gpu))
    assert first and first == again
