"""The server over a real socket with the offline test profile: real espeak-ng
speech, Silero VAD, pocketsphinx, the tiny random LLM and espeak-ng TTS."""
import asyncio
import json

import numpy as np
import pytest
from websockets.asyncio.client import connect

from conftest import say, silence
from duplex.clients.session_client import DuplexClient

QUESTION = "what is the weather like in paris"


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def stop_after(client, n_done: int, type_: str = "response.done") -> asyncio.Event:
    """An event set once `n_done` events of `type_` (responses finished) have arrived."""
    stop, seen = asyncio.Event(), []

    def on_event(event, t):
        if event["type"] == type_:
            seen.append(event)
            if len(seen) >= n_done:
                stop.set()

    client.on_event = on_event
    return stop


def events(record, type_):
    return [e for _, e in record.events if e.get("type") == type_]


def test_a_spoken_question_is_transcribed_and_answered_with_audio(server):
    async def main():
        async with DuplexClient(server.url) as c:
            assert c.session["protocol"] == "duplex/1"
            assert c.session["input_sample_rate"] == 16000
            audio = np.concatenate([silence(0.5), say(QUESTION), silence(0.2)])
            return await c.call(audio, 16000, tail_s=15.0, stop=stop_after(c, 1))

    rec = run(main())
    finals = events(rec, "conversation.item.input_audio_transcription.completed")
    assert finals and "weather" in finals[0]["transcript"]
    assert events(rec, "input_audio_buffer.speech_started")[0]["audio_start_ms"] < 800
    assert rec.timeline.segments(), "agent audio arrived over the socket"
    metrics = events(rec, "duplex.metrics")[0]["latency_ms"]
    assert metrics["total"] > 0 and metrics["endpointing"] >= 0
    assert sum(v for k, v in metrics.items() if k != "total") <= metrics["total"] + 50
    assert events(rec, "response.done")[0]["response"]["status"] == "completed"


def test_speaking_over_the_agent_interrupts_it_and_history_keeps_the_heard_part(server):
    interruption = say("no stop, tell me about the trains instead please")

    async def main():
        async with DuplexClient(server.url) as c:
            async def react(event, t):
                if event["type"] == "output_audio_buffer.started" and not hasattr(c, "_barged"):
                    c._barged = t
                    await asyncio.sleep(0.7)  # let the agent talk for a moment
                    c.inject(interruption)

            c.on_event = react
            rec = await c.call(np.concatenate([say(QUESTION), silence(0.2)]), 16000, tail_s=2.5)
            conn = next(iter(server.server.connections))
            return rec, list(conn.session.history.items)

    rec, history = run(main())
    stopped = events(rec, "response.interrupted")
    assert stopped, "speaking over the agent produced the interruption event"
    t_stop = next(t for t, e in rec.events if e["type"] == "response.interrupted")
    rid = stopped[0]["response_id"]
    # No audio of the interrupted response plays after the interruption.
    late = [p for p in rec.timeline.pieces if p.response_id == rid and p.end > t_stop + 0.05]
    assert late == []
    truncated = events(rec, "conversation.item.truncated")[-1]
    done = [e for e in events(rec, "response.output_audio_transcript.done")
            if e["response_id"] == rid][0]
    heard = next(i for i in history if i.id == truncated["item_id"])
    assert heard.interrupted and heard.text == truncated["transcript"]
    assert len(heard.text) < len(done["transcript"])  # only the heard part is kept
    assert done["transcript"].startswith(heard.text.split(" ")[0]) if heard.text else True
    stop_ms = [e for e in events(rec, "duplex.metrics") if e["kind"] == "interruption"]
    assert stop_ms and stop_ms[0]["stop_latency_ms"] >= 0


def test_bad_messages_get_errors_and_the_session_goes_on(server):
    async def main():
        async with connect(server.url) as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"
            codes = []
            for msg in [b"\x01\x02\x03", b"\0" * 40000, "{nope", '{"type": "fly"}',
                        '{"type": "session.update", "session": {"input_sample_rate": 1234}}',
                        '{"type": "input_audio_buffer.append", "audio": "%%%"}']:
                await ws.send(msg)
                while True:
                    ev = json.loads(await asyncio.wait_for(ws.recv(), 5))
                    if ev["type"] == "error":
                        codes.append(ev["error"]["code"])
                        break
            # The same session still hears speech.
            audio = np.concatenate([say("hello there"), silence(0.3)])
            pcm = (audio * 32767).astype("<i2").tobytes()
            for i in range(0, len(pcm), 640):
                await ws.send(pcm[i:i + 640])
            started = False
            while not started:
                msg = await asyncio.wait_for(ws.recv(), 10)
                started = isinstance(msg, str) and "speech_started" in msg
            return codes

    assert run(main()) == ["invalid_audio", "frame_too_large", "invalid_json", "unknown_event",
                           "invalid_sample_rate", "invalid_audio"]


def test_disconnect_mid_turn_leaves_no_task_behind(server):
    async def main():
        c = DuplexClient(server.url)
        await c.open()
        done = asyncio.Event()

        def on_event(event, t):
            if event["type"] in ("response.created", "output_audio_buffer.started"):
                done.set()

        c.on_event = on_event
        call = asyncio.create_task(c.call(say(QUESTION), 16000, tail_s=5, stop=done))
        await asyncio.wait_for(done.wait(), 20)
        conn = next(iter(server.server.connections))
        c.ws.transport.abort()  # vanish without a closing handshake
        await asyncio.gather(call, return_exceptions=True)
        return conn

    conn = run(main())

    async def leftovers():
        for _ in range(200):
            named = [t for t in asyncio.all_tasks() if t.get_name().startswith(conn.session.id)]
            if not named and not conn.futures and conn not in server.server.connections:
                return []
            await asyncio.sleep(0.05)
        return [t.get_name() for t in named] + [str(f) for f in conn.futures]

    assert server.run(leftovers()) == []
    assert conn.closing


def test_a_failing_model_ends_the_turn_with_an_error_and_the_session_goes_on(test_config,
                                                                             test_models):
    import dataclasses

    from conftest import ServerThread

    class FlakyLLM:
        """Fault injection: the real tiny LLM, except that its first call raises."""

        name = "flaky"

        def __init__(self, inner):
            self.inner, self.calls = inner, 0

        def generate(self, messages, **kw):
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("simulated model crash")
            yield from self.inner.generate(messages, **kw)

    srv = ServerThread(test_config, dataclasses.replace(test_models, llm=FlakyLLM(test_models.llm)))
    try:
        async def main():
            async with DuplexClient(srv.url) as c:
                turn = np.concatenate([say("hello there"), silence(1.5)])
                return await c.call(np.concatenate([turn, turn]), 16000, tail_s=3)

        rec = run(main())
    finally:
        srv.stop()
    errors = [e["error"] for e in events(rec, "error")]
    assert errors and errors[0]["code"] == "llm_failed" and "simulated" in errors[0]["message"]
    statuses = [e["response"]["status"] for e in events(rec, "response.done")]
    assert statuses[0] == "failed"
    second = events(rec, "response.created")[1]["response"]["id"]
    assert events(rec, "output_audio_buffer.started")[0]["response_id"] == second


def test_the_token_guards_the_socket(test_config, test_models):
    import copy

    from conftest import ServerThread

    cfg = copy.deepcopy(test_config)
    cfg.server.token = "s3cret"
    srv = ServerThread(cfg, test_models)
    try:
        async def attempt(token):
            c = DuplexClient(srv.url, token=token)
            try:
                await c.open()
                await c.close()
                return "open"
            except ConnectionError as e:
                await c.ws.wait_closed()
                return f"{c.ws.close_code} {c.ws.close_reason} {e}"

        refused = run(attempt("wrong"))
        assert refused.startswith("1008 token rejected") and "unauthorized" in refused
        assert run(attempt("s3cret")) == "open"
    finally:
        srv.stop()


def test_health_and_unknown_paths(server):
    import urllib.error
    import urllib.request

    with urllib.request.urlopen(server.http + "/healthz") as r:
        assert r.read() == b"ok\n"
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(server.http + "/../../etc/passwd")
    e.value.close()
    assert e.value.code == 404


def test_an_oversized_message_closes_only_that_session(server):
    async def main():
        async with connect(server.url, max_size=None) as ws:
            await ws.recv()
            await ws.send(b"\0" * (2 << 20))  # 2 MiB: over the transport limit
            await ws.wait_closed()
            code = ws.close_code
        async with DuplexClient(server.url) as c:  # the server is still there
            return code, c.session["protocol"]

    assert run(main()) == (1009, "duplex/1")
