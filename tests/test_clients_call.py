"""`duplex call` against a real `--profile test` server: the files it writes
are the ones the benchmarks read, so their timing is checked against the
events the server sent."""
import itertools
import json

import numpy as np
import pytest
import soundfile as sf

from conftest import say, silence
from duplex.audio import resample
from duplex.clients import call
from duplex.record import CallRecord

QUESTION = "what is the weather like in paris"


@pytest.fixture(scope="module")
def server(test_config, test_models):
    """The test-profile server, with the agent's answers cut to 8 tokens to keep calls short."""
    import copy
    import dataclasses

    from conftest import ServerThread

    cfg = copy.deepcopy(test_config)
    cfg.llm.max_new_tokens = 8
    srv = ServerThread(cfg, dataclasses.replace(test_models, cfg=cfg))
    yield srv
    srv.stop()


def stretches(audio: np.ndarray, rate: int, ms: int = 20, gap_s: float = 0.4):
    """Non-silent (start, end) stretches in seconds; pauses shorter than gap_s are bridged."""
    n = rate * ms // 1000
    frames = audio[: audio.size // n * n].reshape(-1, n)
    loud = np.flatnonzero(np.sqrt((frames ** 2).mean(axis=1)) > 1e-3)
    out: list[list[float]] = []
    for i in loud:
        t = i * ms / 1000
        if out and t - out[-1][1] <= gap_s:
            out[-1][1] = t + ms / 1000
        else:
            out.append([t, t + ms / 1000])
    return [tuple(s) for s in out]


@pytest.mark.slow
def test_a_call_writes_time_synchronous_files_that_match_the_events(server, tmp_path):
    # A question, then the user talks over the agent's answer (a barge-in).
    user = np.concatenate([silence(0.3), say(QUESTION), silence(1.2),
                           say("no stop, tell me about trains"), silence(1.0)])
    wav = tmp_path / "in.wav"
    sf.write(wav, user, 16000, subtype="PCM_16")
    out = tmp_path / "call"
    assert call.main([str(wav), "--url", server.url, "--out", str(out), "--tail", "0.5",
                      "--quiet"]) == 0

    agent, rate = sf.read(out / "agent.wav", dtype="float32")
    assert rate == 24000 and agent.ndim == 1
    assert agent.size == round(user.size / 16000 * rate), "agent.wav is as long as the input"
    stereo, srate = sf.read(out / "conversation.wav", dtype="float32")
    assert srate == rate and stereo.shape[1] == 2 and stereo.shape[0] >= agent.size
    left = resample(user, 16000, rate)
    assert np.corrcoef(stereo[: left.size, 0], left)[0, 1] > 0.99, "user on the left"
    np.testing.assert_allclose(stereo[: agent.size, 1], agent, atol=1e-4)  # agent on the right

    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert events[0]["event"]["type"] == "session.created"
    assert all(a["t"] <= b["t"] for a, b in itertools.pairwise(events))
    rec = CallRecord.read(out, wav)
    starts = {e["response_id"]: t for t, e in rec.of_type("output_audio_buffer.started")}
    ends = {}
    for t, e in rec.of_type("output_audio_buffer.stopped", "response.interrupted"):
        ends.setdefault(e["response_id"], t)  # the first of them ends the agent's audio
    interrupted = [e["response_id"] for _, e in rec.of_type("response.interrupted")]
    assert interrupted, "the second utterance barged in"
    duration = user.size / 16000
    windows = sorted((starts[r], min(ends.get(r, duration), duration)) for r in starts
                     if starts[r] < duration)
    found = stretches(agent, rate)
    assert found and windows
    # Every stretch of agent audio lies inside an agent-audio window of the events...
    for a, b in found:
        assert any(s - 0.05 <= a and b <= e + 0.1 for s, e in windows), (a, b, windows)
    # ...and every window holds agent audio from (nearly) its start.
    for s, e in windows:
        inside = [a for a, b in found if s - 0.05 <= a <= e]
        assert inside and inside[0] - s < 0.3, (s, e, found)
    # Nothing of the interrupted response plays after the interruption.
    t_int = next(t for t, e in rec.of_type("response.interrupted"))
    assert not any(a < t_int + 0.1 < b for a, b in found)


@pytest.mark.slow
def test_a_fast_call_keeps_event_times_on_the_input_time_line(server, tmp_path):
    user = np.concatenate([silence(0.3), say(QUESTION), silence(0.8)])
    sf.write(tmp_path / "in.wav", user, 16000)
    out = tmp_path / "fast"
    assert call.main([str(tmp_path / "in.wav"), "--url", server.url, "--out", str(out),
                      "--fast", "--tail", "0.3", "--quiet"]) == 0
    rec = CallRecord.read(out, tmp_path / "in.wav")
    # An event about audio at position p cannot arrive before p was sent.
    for t, e in rec.events:
        for key in ("audio_start_ms", "audio_end_ms"):
            if isinstance(e.get(key), (int, float)):
                assert t >= e[key] / 1000 - 0.02, (t, e)
    # (Only "a transcript": fed faster than it perceives, the server may lose
    # the first words of a turn from its pre-roll ring.)
    final = rec.of_type("conversation.item.input_audio_transcription.completed")
    assert final and final[0][1]["transcript"]
    done = rec.of_type("response.done")
    assert done and done[0][1]["response"]["status"] == "completed", "the tail waited for it"
    assert sf.info(out / "agent.wav").frames == round(user.size / 16000 * 24000)


def test_bad_input_and_unreachable_servers_are_explained(tmp_path, capsys):
    assert call.main([str(tmp_path / "missing.wav"), "--out", str(tmp_path / "o")]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "text.wav").write_text("not audio")
    assert call.main([str(tmp_path / "text.wav"), "--out", str(tmp_path / "o")]) == 2
    assert "cannot read" in capsys.readouterr().err
    sf.write(tmp_path / "ok.wav", say("hello"), 16000)
    assert call.main([str(tmp_path / "ok.wav"), "--out", str(tmp_path / "o"),
                      "--url", "ws://127.0.0.1:9/ws"]) == 1
    assert "cannot reach the server" in capsys.readouterr().err


def test_a_rejected_token_is_explained(test_config, test_models, tmp_path, capsys):
    import copy

    from conftest import ServerThread

    cfg = copy.deepcopy(test_config)
    cfg.server.token = "s3cret"
    srv = ServerThread(cfg, test_models)
    try:
        sf.write(tmp_path / "ok.wav", say("hello"), 16000)
        rc = call.main([str(tmp_path / "ok.wav"), "--out", str(tmp_path / "o"), "--url", srv.url,
                        "--token", "wrong"])
    finally:
        srv.stop()
    assert rc == 1 and "rejected the access token" in capsys.readouterr().err
