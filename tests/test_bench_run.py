"""`duplex bench` end to end with `--profile test`: every task on synthesized
samples in-process (virtual clock), interruption over a real socket, the two
clocks agreeing, Full-Duplex-Bench outputs, reports, plots and compare."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import numpy as np
import pytest
import soundfile as sf
from conftest import say, silence
from duplex.recipes.bench import cli
from duplex.recipes.bench.runner import InProcessBackend, full_track
from duplex.recipes.bench.scenarios import make_scenarios
from duplex.recipes.bench.speech import Speaker

from duplex.bench.timeline import agent_timeline, decisions_agree
from duplex.record import CallRecord

pytestmark = pytest.mark.slow

SCRIPTS = {
    "pause": [{"id": "p1", "tail": 0.3, "parts": [
        {"say": "I would like to book a table for"}, {"pause": 1.5}, {"say": "four people"}]}],
    "turn_taking": [{"id": "t1", "tail": 3.0, "parts": [{"say": "What time does the museum open?"}]}],
    "backchannel": [{"id": "b1", "tail": 0.5, "parts": [
        {"say": "Last weekend I went hiking."}, {"pause": 0.4}, {"say": "The view was lovely."}]}],
    # The interruption comes 3.5 s after the question: the agent is talking by then on either clock.
    "interruption": [{"id": "i1", "tail": 3.0, "parts": [
        {"say": "Tell me about the history of Rome.", "role": "context"}, {"pause": 3.5},
        {"say": "Sorry, tell me about Venice instead.", "role": "interrupt"}]}],
}
CONVERSATION = {"id": "c1", "axis": "voice_editing", "user_turn_1_transcript": "Hello there.",
                "user_turn_2_transcript": "Set a timer for ten, no, fifteen minutes.",
                "rubric": ["The final answer mentions a timer.", "The final answer says fifteen minutes."]}


class JudgeDouble(BaseHTTPRequestHandler):
    """An OpenAI-compatible chat endpoint (no real judge is reachable here): says yes
    to rubric items that contain "mentions", no to the others; keeps every prompt."""

    prompts: ClassVar[list] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][-1]["content"]
        JudgeDouble.prompts.append(prompt)
        item = prompt.split("Rubric item:")[1]
        answer = "Yes." if "mentions" in item else "no"
        data = json.dumps({"choices": [{"message": {"role": "assistant", "content": answer}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def judge_url():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), JudgeDouble)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_port}/v1"
    srv.shutdown()


@pytest.fixture(scope="module")
def bench_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    (root / "scripts.json").write_text(json.dumps(SCRIPTS))
    make_scenarios(root / "data", scripts=root / "scripts.json", multi_turn=False,
                   speaker=Speaker(root / "cache"))
    (root / "data" / "multi_turn").mkdir()
    (root / "data" / "multi_turn" / "conversations.jsonl").write_text(json.dumps(CONVERSATION) + "\n")
    return root / "data"


@pytest.fixture(scope="module")
def in_process_run(bench_data, tmp_path_factory, test_config, test_models, judge_url):
    out = tmp_path_factory.mktemp("run-virtual")
    args = cli.build_parser().parse_args(
        ["all", "--data", str(bench_data), "--in-process", "--profile", "test", "--out", str(out),
         "--judge", "openai", "--judge-url", judge_url, "--judge-model", "double"])
    report = cli.run(args, InProcessBackend(test_config, test_models))
    return out, report


def samples(out):
    return {(r["task"], r["id"]): r for r in map(json.loads, (out / "samples.jsonl").open())}


def test_every_task_runs_in_process_and_is_reported(in_process_run, bench_data):
    out, rep = in_process_run
    assert set(rep) == {"turn_taking", "pause", "backchannel", "interruption", "multi_turn"}
    assert rep == json.loads((out / "report.json").read_text())
    for task in ("turn_taking", "pause", "backchannel", "interruption"):
        assert rep[task]["n"] == 1 and rep[task]["tor"] in (0.0, 1.0)
    tt = rep["turn_taking"]
    # The test profile answers every question, after the user stopped: at the earliest
    # min_gap_ms (100) into the silence, at the latest unfinished_max_silence_ms (2000).
    assert tt["tor"] == 1.0 and 0.1 <= tt["latency_s"]["median"] < 2.5
    assert 100 <= tt["server_latency_ms"]["endpointing"] <= 2100
    assert tt["server_latency_ms"]["total"] > tt["server_latency_ms"]["endpointing"]
    intr = rep["interruption"]
    assert intr["agent_speaking_at_onset"] == 1.0
    assert 0.15 <= intr["stop_latency_s"]["median"] < 1.0  # barge-in needs 200 ms of speech
    # it answers the interruption only once the user stopped: never over the rest of it
    assert intr["tor"] == 1.0 and intr["response_latency_s"]["median"] >= 0.1
    assert 0.0 <= rep["backchannel"]["frequency"] < 1.0
    md = (out / "report.md").read_text()
    assert "| interruption | 1 |" in md and "APR" in md
    assert (out / "plots" / "latency_cdf.png").stat().st_size > 0
    assert len(list((out / "plots").glob("timeline_*.png"))) == 4


def test_each_sample_gets_a_time_synchronous_output_wav_beside_its_input(in_process_run, bench_data):
    out, _ = in_process_run
    for task, sid in [("pause", "p1"), ("turn_taking", "t1"), ("backchannel", "b1"), ("interruption", "i1")]:
        d = bench_data / task / sid
        inp, outp = sf.info(d / "input.wav"), sf.info(d / "output.wav")
        assert (outp.frames, outp.samplerate) == (inp.frames, inp.samplerate)
        chunks = json.loads((d / "output.json").read_text())["chunks"]
        starts = [c["timestamp"][0] for c in chunks]
        assert starts == sorted(starts) and all(0 <= s < inp.duration for s in starts)
    res = samples(out)[("turn_taking", "t1")]
    assert res["agent_text"] and res["first_word_s"] > json.loads(
        (bench_data / "turn_taking" / "t1" / "turn_taking.json").read_text())[0]["timestamp"][0]
    agent, _ = sf.read(bench_data / "turn_taking" / "t1" / "output.wav", dtype="float32")
    first = np.flatnonzero(np.abs(agent) > 0.003)[0] / 16000
    assert first == pytest.approx(res["first_word_s"], abs=0.05)  # words sit on the agent's audio


def test_a_saved_call_can_be_scored_again_offline(in_process_run):
    out, _ = in_process_run
    rec = CallRecord.read(out / "calls" / "interruption" / "i1")
    tl = agent_timeline(rec.events, full_track(rec), rec.output_rate)
    again = " ".join(w.text for w in tl.cropped(rec.duration).words)
    assert again.startswith(samples(out)[("interruption", "i1")]["agent_text"][:40])


def test_multi_turn_answers_are_graded_by_the_judge(in_process_run):
    out, rep = in_process_run
    mt = rep["multi_turn"]
    assert mt["n"] == 1 and mt["judge"].startswith("openai:double")
    assert (mt["apr"], mt["ars"]) == (0.0, 0.5)
    assert mt["by_axis"] == {"voice_editing": {"n": 1, "apr": 0.0, "ars": 0.5}}
    res = samples(out)[("multi_turn", "c1")]
    assert len(res["answers"]) == 2 and all(res["answers"])
    assert res["turn_starts_s"][1] > 1.0  # the second turn came after the first answer
    assert any(res["answers"][-1] in p for p in JudgeDouble.prompts)


def test_over_a_real_socket_the_same_turn_taking_decisions_are_made(
        in_process_run, bench_data, server, tmp_path, capsys):
    out, _ = in_process_run
    rc = cli.main(["interruption", "--data", str(bench_data), "--url", server.url,
                   "--out", str(tmp_path), "--no-fdb-output", "--tail", "2"])
    assert rc == 0
    rep = json.loads((tmp_path / "report.json").read_text())
    assert rep["interruption"]["n"] == 1 and rep["interruption"]["tor"] == 1.0
    real = samples(tmp_path)[("interruption", "i1")]["decisions"]
    virtual = samples(out)[("interruption", "i1")]["decisions"]
    assert real["interrupted_ms"] and decisions_agree(real, virtual) == []
    capsys.readouterr()
    assert cli.main(["compare", str(out), str(tmp_path)]) == 0
    table = capsys.readouterr().out
    assert "interruption.stop_latency_s.median" in table and "B/A" in table


def test_fdb_samples_of_every_kind_get_outputs_of_the_input_length(tmp_path, test_config, test_models):
    data = tmp_path / "fdb"
    question = np.concatenate([silence(0.3), say("what time is it"), silence(2.0)])
    layout = {"candor_turn_taking/0001": ("turn_taking.json", [{"text": "x", "timestamp": [1.4, 3.0]}]),
              "icc_backchannel/0001": (None, None),
              "v1.5/user_backchannel/0001": ("metadata.json", {"timestamps": [2.2, 2.6],
                                                               "current_turn_text": "mm-hm"})}
    for sub, (name, content) in layout.items():
        d = data / sub
        d.mkdir(parents=True)
        sf.write(d / "input.wav", question, 16000, subtype="PCM_16")
        if name:
            (d / name).write_text(json.dumps(content))
    args = cli.build_parser().parse_args(["turn-taking", "backchannel", "overlap", "--data", str(data),
                                          "--in-process", "--out", str(tmp_path / "out"), "--plots", "0",
                                          "--concurrency", "2"])
    rep = cli.run(args, InProcessBackend(test_config, test_models, tail_s=1.0))
    assert rep["overlap"]["user_backchannel"]["n"] == 1
    for sub in layout:
        info = sf.info(data / sub / "output.wav")
        assert (info.frames, info.samplerate) == (question.size, 16000)


def test_bad_requests_get_clear_messages(tmp_path, capsys):
    assert cli.main(["dance", "--data", str(tmp_path), "--in-process", "--out", str(tmp_path)]) == 2
    assert "unknown task 'dance'" in capsys.readouterr().err
    assert cli.main(["pause", "--data", str(tmp_path / "nope"), "--in-process", "--out", str(tmp_path)]) == 2
    assert "no such directory" in capsys.readouterr().err
    assert cli.main(["pause", "--data", str(tmp_path), "--url", "http://x", "--out", str(tmp_path)]) == 2
    assert "no pause samples" in capsys.readouterr().err
    assert cli.main(["compare", str(tmp_path)]) == 2
    with pytest.raises(SystemExit):
        cli.main(["pause", "--data", str(tmp_path), "--out", str(tmp_path)])  # neither --url nor --in-process
