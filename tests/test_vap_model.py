"""The VAP model: streaming ONNX runtime == torch full-sequence forward within
its bounded context, for both input kinds; checkpoint loading errors."""
import numpy as np
import pytest
import torch

from duplex.errors import ModelUnavailable
from duplex.models.vap.checkpoint import load_model, save_model
from duplex.models.vap.export import export_onnx
from duplex.models.vap.model import VAPModel, VAPModelConfig
from duplex.models.vap.runtime import VAPRuntime

CTX = 12  # frames of context: short, so the test runs past it


def make(tmp_path, exporter="legacy", **kw):
    torch.manual_seed(0)
    cfg = VAPModelConfig(dim=16, heads=2, ff=32, channel_layers=1, cross_layers=2,
                         context_frames=CTX, **kw)
    model = VAPModel(cfg).eval()
    save_model(tmp_path / "m", model, {"thresholds": {}})
    export_onnx(model, tmp_path / "m.onnx", exporter)
    return model, VAPRuntime.load(tmp_path)


@pytest.fixture(scope="module")
def va_model(tmp_path_factory):
    """Exported like the shipped checkpoint (torch.export-based exporter, ~10 s)."""
    return make(tmp_path_factory.mktemp("vap"), exporter="dynamo")


def full_probs(model, x):
    with torch.no_grad():
        out = model(torch.tensor(x)[None])
        p = model.probabilities(out["logits"][0])
    return {k: v.numpy() for k, v in p.items()} | {"p_va": torch.sigmoid(out["va_logits"][0]).numpy()}


@pytest.mark.slow
def test_onnx_stream_equals_full_sequence_forward(va_model):
    model, rt = va_model
    rng = np.random.default_rng(0)
    n = 3 * CTX + 5
    va = np.stack([rng.random(n), (rng.random(n) > 0.5)], 1).astype(np.float32)
    ref = full_probs(model, va)
    stream = rt.stream(context_s=CTX / 50)
    outs = [stream.step(float(p), bool(a)) for p, a in va]
    assert np.allclose([o.p_now for o in outs], ref["p_now"], atol=1e-5)
    assert np.allclose([o.p_future for o in outs], ref["p_future"], atol=1e-5)
    assert np.allclose([o.p_bc for o in outs], ref["p_bc"], atol=1e-5)
    assert np.allclose([o.p_va for o in outs], ref["p_va"], atol=1e-5)
    assert outs[-1].p_backchannel == outs[-1].p_bc[0]
    assert np.allclose(np.sum([o.p_now for o in outs], 1), 1.0, atol=1e-5)
    # a longer stream context sees more than the model's window: results differ
    longer = rt.stream(context_s=3 * CTX / 50)
    outs2 = [longer.step(float(p), bool(a)) for p, a in va]
    assert not np.allclose([o.p_now for o in outs2][-5:], ref["p_now"][-5:], atol=1e-4)
    # the batched stream steps several sessions in one call, same numbers
    batch = rt.stream_batch(3, context_s=CTX / 50)
    for t, (p, a) in enumerate(va):
        res = batch.step_many([p, 0.0, p], [a, 1.0, a])
        assert np.allclose(res[0].p_now, outs[t].p_now, atol=1e-5)
        assert res[2].p_now == res[0].p_now


def test_forward_long_equals_forward():
    torch.manual_seed(1)
    model = VAPModel(VAPModelConfig(dim=16, heads=2, ff=32, context_frames=CTX)).eval()
    x = (torch.rand(2, 7 * CTX, 2) > 0.5).float()
    with torch.no_grad():
        a = model(x)["logits"]
        b = model.forward_long(x, block=CTX + 3)["logits"]
    assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.slow
def test_audio_model_trains_and_streams(tmp_path):
    model, rt = make(tmp_path, input="audio", n_mels=16)
    rng = np.random.default_rng(0)
    n = 2 * CTX
    audio = (rng.standard_normal((2, n * 320)) * 0.1).astype(np.float32)
    ref = full_probs(model, audio)
    stream = rt.stream(context_s=CTX / 50)
    outs = [stream.step_audio(audio[0, i * 320:(i + 1) * 320], audio[1, i * 320:(i + 1) * 320])
            for i in range(n)]
    assert np.allclose([o.p_now for o in outs], ref["p_now"], atol=1e-4)
    with pytest.raises(ValueError, match="audio"):
        stream.step(0.5, True)
    # one optimiser step on audio lowers the loss on that batch
    model.train()
    target = torch.randint(0, 256, (1, n))
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    losses = []
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(model(torch.tensor(audio)[None])["logits"][0], target[0])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_bad_input_and_missing_checkpoints(tmp_path):
    _, rt = make(tmp_path)  # legacy exporter: instant
    stream = rt.stream(0.5)
    with pytest.raises(ValueError, match="probabilities"):
        stream.step(1.5, False)
    with pytest.raises(ValueError, match="probabilities"):
        stream.step(float("nan"), False)
    with pytest.raises(ModelUnavailable, match="does not exist"):
        VAPRuntime.load(tmp_path / "nowhere.onnx")
    with pytest.raises(ModelUnavailable, match="vap_model"):
        load_model(tmp_path / "nowhere")
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    (tmp_path / "bad.json").write_text('{"model": {}}')
    with pytest.raises(ModelUnavailable):
        VAPRuntime.load(tmp_path / "bad.onnx")
