"""The browser page, end to end in Debian's Chromium driven by Playwright.

Chromium's fake microphone plays an espeak-ng WAV (a question, a pause, then
words spoken over the agent's answer; the file loops), with the page's
echo cancellation, noise suppression and gain control on. The page talks to
a real `--profile test` server. Nothing is downloaded: Playwright drives the
system browser, with every network feature that could phone home turned off.
"""
import http.server
import shutil
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import say, silence

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WEB = Path(__file__).resolve().parent.parent / "clients" / "web"
QUESTION = "what is the weather like in paris"
OFFLINE_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-default-apps", "--disable-extensions"]
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def mic_wav(tmp_path_factory) -> Path:
    """The fake microphone: 16-bit PCM at 48 kHz (Chromium resamples it to the
    capture rate). The question is asked twice; the pause between is shorter
    than the agent's answer, so the second asking lands on the agent's speech:
    a barge-in. (The first asking also lets the browser's gain control settle;
    pocketsphinx often garbles the very first words after the page opens.)"""
    question = say(QUESTION, rate=48000)
    audio = np.concatenate([silence(1.0, 48000), question, silence(2.0, 48000), question,
                            silence(2.0, 48000)])
    path = tmp_path_factory.mktemp("mic") / "mic.wav"
    sf.write(path, audio, 48000, subtype="PCM_16")
    return path


def launch(p, profile: Path, *extra):
    """Chromium with a new, empty profile directory; returns its browser context."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM} (apt install chromium)")
    return p.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM,
                                                headless=True, args=OFFLINE_FLAGS + list(extra))


@pytest.fixture(scope="module")
def pw():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(pw, mic_wav, tmp_path_factory):
    b = launch(pw, tmp_path_factory.mktemp("chromium-profile"), "--use-fake-ui-for-media-stream",
               "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={mic_wav}")
    yield b
    b.close()


def open_page(browser, url):
    page = browser.new_page()
    problems = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(url)
    return page, problems


def hook(page, expr):
    return page.evaluate(f"window.duplex.{expr}")


def spoken_words_in(transcript: str) -> int:
    return len(set(transcript.split()) & set(QUESTION.split()))


@pytest.mark.slow
def test_the_page_hears_the_microphone_plays_the_agent_and_flushes_on_barge_in(
        server, browser, artifacts_dir):
    page, problems = open_page(browser, server.http + "/")
    page.focus("#start")
    page.keyboard.press("Enter")  # the page works from the keyboard
    page.wait_for_function("window.duplex.ready", timeout=TIMEOUT_MS)
    assert hook(page, "connection") == "connected"
    # The page asked for agent audio at its own AudioContext rate.
    assert hook(page, "outputRate") == hook(page, "sampleRate") > 0

    # The user's words, recognised by the server, appear on the page.
    page.wait_for_function("window.duplex.userTurns.length > 1", timeout=TIMEOUT_MS)
    heard = max(hook(page, "userTurns"), key=spoken_words_in)
    assert spoken_words_in(heard) >= 4, hook(page, "userTurns")
    assert heard in page.inner_text("#log")

    # Agent audio is played by the playback worklet: the played-sample counter rises.
    page.wait_for_function("window.duplex.playedSamples > window.duplex.sampleRate / 4",
                           timeout=TIMEOUT_MS)
    assert hook(page, "agentText")
    assert page.inner_text("#latency td[data-key=total]").endswith("ms")
    assert page.inner_text("#p-user-value") != "–", "turn-taking probabilities are shown"

    # The second utterance lands on the agent's speech: the server interrupts,
    # the page flushes its buffer at once and truncates the item to what played.
    page.wait_for_function("window.duplex.flushes.length > 0", timeout=TIMEOUT_MS)
    flush = hook(page, "flushes[0]")
    rid = flush["response_id"]
    events = hook(page, "events")
    types = [e["type"] for e in events]
    i = types.index("response.interrupted")
    # a barge-in (not a cancel): it dates from the onset of the user's speech over the agent
    onsets = [e["audio_start_ms"] for e in events[:i] if e["type"] == "input_audio_buffer.speech_started"]
    assert events[i]["audio_start_ms"] in onsets, "a barge-in, not a cancel"
    assert events[i]["response_id"] == rid and events[i]["reason"] == "interrupted"
    assert flush["dropped_ms"] > 0, "buffered agent audio was thrown away"
    assert flush["played_ms"] > 0
    assert hook(page, "truncates[0]")["audio_end_ms"] == flush["played_ms"]
    page.wait_for_timeout(500)
    assert round(hook(page, f"playedMs['{rid}']")) == flush["played_ms"], \
        "nothing of the interrupted response played after the flush"
    assert types.count("conversation.item.truncated") >= 1
    page.wait_for_function("document.querySelector('#log li.agent .note').textContent"
                           ".includes('interrupted')", timeout=TIMEOUT_MS)

    page.screenshot(path=str(artifacts_dir / "browser_page.png"), full_page=True)

    # The agent answers again; Escape stops it (response.cancel): the same flush.
    page.wait_for_function("Object.keys(window.duplex.playedMs).length > 1", timeout=TIMEOUT_MS)
    page.keyboard.press("Escape")
    page.wait_for_function("window.duplex.flushes.length > 1", timeout=TIMEOUT_MS)
    cancelled = hook(page, "flushes[1]")["response_id"]
    page.wait_for_function(f"window.duplex.events.some(e => e.type === 'response.done' && "
                           f"e.response_id === '{cancelled}')", timeout=TIMEOUT_MS)
    done = [e for e in hook(page, "events")
            if e["type"] == "response.done" and e["response_id"] == cancelled]
    assert done[0]["reason"] == "client_cancelled"
    assert not problems, problems
    page.click("#start")  # End conversation
    page.wait_for_function("window.duplex.connection === 'idle'", timeout=TIMEOUT_MS)
    page.close()


def test_the_page_explains_a_rejected_token_and_a_full_server(browser, test_config, test_models):
    import copy

    from conftest import ServerThread

    cfg = copy.deepcopy(test_config)
    cfg.server.token, cfg.server.max_sessions = "s3cret", 0
    srv = ServerThread(cfg, test_models)
    try:
        for query, words in [("", "rejected the access token"), ("?token=s3cret", "server is full")]:
            page, problems = open_page(browser, srv.http + "/" + query)
            page.click("#start")
            page.wait_for_selector("#error:not([hidden])", timeout=TIMEOUT_MS)
            assert words in page.inner_text("#error")
            assert hook(page, "connection") == "closed" and not problems
            page.close()
    finally:
        srv.stop()


def test_the_page_explains_an_unreachable_server_and_a_refused_microphone(
        pw, browser, tmp_path_factory):
    # The page served by a plain static web server: no socket behind it.
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(WEB))
    handler.log_message = lambda *a: None
    static = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=static.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{static.server_address[1]}/"
    try:
        page, _ = open_page(browser, url)
        page.click("#start")
        page.wait_for_selector("#error:not([hidden])", timeout=TIMEOUT_MS)
        assert "Cannot reach the server" in page.inner_text("#error")
        page.close()

        # A browser that denies the microphone (no fake permission prompt).
        denying = launch(pw, tmp_path_factory.mktemp("chromium-deny"),
                         "--use-fake-device-for-media-stream")
        try:
            page = denying.new_page()
            page.goto(url)
            page.click("#start")
            page.wait_for_selector("#error:not([hidden])", timeout=TIMEOUT_MS)
            assert "Microphone access was refused" in page.inner_text("#error")
        finally:
            denying.close()
    finally:
        static.shutdown()


CAPTURE_HARNESS = """async () => {
  const ctx = new AudioContext();
  await ctx.audioWorklet.addModule('capture-worklet.js');
  const out = {rate: ctx.sampleRate};
  for (const f of [1000, 11000]) {
    const osc = new OscillatorNode(ctx, {frequency: f});
    const gain = new GainNode(ctx, {gain: 0.5});
    const node = new AudioWorkletNode(ctx, 'duplex-capture',
      {numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1]});
    const frames = [];
    node.port.onmessage = (e) => frames.push(Array.from(new Int16Array(e.data.pcm)));
    osc.connect(gain).connect(node).connect(ctx.destination);
    osc.start();
    await new Promise((r) => setTimeout(r, 600));
    osc.stop(); node.disconnect();
    out[f] = frames;
  }
  await ctx.close();
  return out;
}"""

PLAYBACK_HARNESS = """async () => {
  const ctx = new AudioContext();
  await ctx.audioWorklet.addModule('playback-worklet.js');
  const node = new AudioWorkletNode(ctx, 'duplex-playback', {numberOfInputs: 0,
    numberOfOutputs: 1, outputChannelCount: [1],
    processorOptions: {sourceRate: 24000, jitterMs: 60}});
  node.connect(ctx.destination);
  let last = {played: {}, buffered: 0}, flushed = null;
  node.port.onmessage = (e) => { if (e.data.type === 'position') last = e.data; else flushed = e.data; };
  const wait = (ms) => new Promise((r) => setTimeout(r, ms));
  const snap = () => ({played: last.played.t || 0, buffered: last.buffered});
  const audio = (n) => node.port.postMessage({type: 'audio', rid: 't',
                                             samples: new Float32Array(n).fill(0.1)});
  const out = {};
  audio(960);  // 40 ms: less than the 60 ms jitter buffer
  await wait(300); out.belowJitter = snap();
  audio(48000);
  await wait(300); out.playing = snap();
  node.port.postMessage({type: 'pause'});
  await wait(200); out.paused1 = snap(); await wait(300); out.paused2 = snap();
  node.port.postMessage({type: 'resume'});
  await wait(300); out.resumed = snap();
  node.port.postMessage({type: 'flush', id: 1});
  await wait(200); out.flushed = flushed; out.afterFlush1 = snap();
  await wait(300); out.afterFlush2 = snap();
  await ctx.close();
  return out;
}"""


def test_the_worklets_resample_the_microphone_and_obey_flush_pause_resume(server, browser):
    page, problems = open_page(browser, server.http + "/")
    cap = page.evaluate(CAPTURE_HARNESS)
    for f in ("1000", "11000"):
        assert cap[f] and all(len(frame) == 320 for frame in cap[f]), "20 ms frames at 16 kHz"
    tone = np.concatenate(cap["1000"][3:]).astype(np.float64) / 32768
    spectrum = np.abs(np.fft.rfft(tone * np.hanning(tone.size)))
    assert abs(np.argmax(spectrum) * 16000 / tone.size - 1000) < 20, "1 kHz stays 1 kHz"
    assert abs(np.sqrt(np.mean(tone ** 2)) - 0.5 / np.sqrt(2)) < 0.02, "unity gain"
    above = np.concatenate(cap["11000"][3:]).astype(np.float64) / 32768
    assert np.sqrt(np.mean(above ** 2)) < 0.01 * 0.5, "11 kHz is filtered, not aliased to 5 kHz"

    pb = page.evaluate(PLAYBACK_HARNESS)
    assert pb["belowJitter"]["played"] == 0, "waits for the jitter buffer"
    assert pb["playing"]["played"] > 0
    assert pb["paused1"]["played"] == pb["paused2"]["played"] and pb["paused2"]["buffered"] > 0
    assert pb["resumed"]["played"] > pb["paused2"]["played"]
    flushed = pb["flushed"]
    assert flushed["dropped"] > 0 and pb["afterFlush1"]["buffered"] == 0
    assert pb["afterFlush1"]["played"] == pb["afterFlush2"]["played"] == flushed["played"]["t"]
    assert not problems, problems
    page.close()
