"""`duplex talk` against a real `--profile test` server.

The sound card is the one thing that cannot be reached here, so a file-backed
device stands in for the sounddevice layer (clients/audio_device.py) and
nothing else: it feeds a WAV-like signal to the client as microphone blocks
in real time and records what the client plays. It can also leak the speaker
back into the microphone, like open speakers do.
"""
import threading
import time

import numpy as np
import pytest

from conftest import say, silence
from duplex.clients import talk
from duplex.clients.audio_device import DeviceError, open_device

RATE = 48_000  # a typical sound-card rate: exercises resampling both ways
QUESTION = "what is the weather like in paris"


class FileDevice:
    """Test double for the sound card: microphone from an array, speaker to a list."""

    def __init__(self, mic: np.ndarray, rate: int = RATE, echo: float = 0.0, block_ms: int = 20):
        self.mic, self.echo = mic, echo
        self.input_rate = self.output_rate = rate
        self.block = rate * block_ms // 1000
        self.finished = threading.Event()
        self.speaker: list[np.ndarray] = []
        self._stop = threading.Event()

    def start(self, on_input, fill_output):
        self._thread = threading.Thread(target=self._run, args=(on_input, fill_output),
                                        daemon=True)
        self._thread.start()

    def _run(self, on_input, fill_output):
        t0, last = time.monotonic(), np.zeros(self.block, np.float32)
        for i, k in enumerate(range(0, self.mic.size, self.block)):
            if self._stop.is_set():
                break
            block = np.pad(self.mic[k:k + self.block], (0, max(0, k + self.block - self.mic.size)))
            on_input(block + self.echo * last)  # the room: speaker output reaches the mic
            last = fill_output(self.block)
            self.speaker.append(last)
            time.sleep(max(0.0, t0 + (i + 1) * self.block / self.input_rate - time.monotonic()))
        self.finished.set()

    def stop(self):
        self._stop.set()

    def played(self) -> np.ndarray:
        return np.concatenate(self.speaker) if self.speaker else np.zeros(0, np.float32)


def run_talk(monkeypatch, capsys, device, *args):
    monkeypatch.setattr(talk, "open_device", lambda i, o: device)
    rc = talk.main(list(args))
    return rc, capsys.readouterr()


def loud_blocks(audio: np.ndarray, rate: int = RATE, ms: int = 20) -> np.ndarray:
    n = rate * ms // 1000
    frames = audio[: audio.size // n * n].reshape(-1, n)
    return np.sqrt((frames ** 2).mean(axis=1)) > 0.01


@pytest.mark.slow
def test_talk_prints_the_conversation_plays_the_agent_and_yields_to_barge_in(
        server, monkeypatch, capsys):
    speech = say(QUESTION, rate=RATE)
    lead = silence(0.3, RATE)
    mic = np.concatenate([lead, speech, silence(1.0, RATE),
                          say("no stop, tell me about trains", rate=RATE), silence(2.5, RATE)])
    device = FileDevice(mic)
    rc, out = run_talk(monkeypatch, capsys, device, "--url", server.url)
    assert rc == 0, out.err
    assert "open speakers echo into the microphone" in out.err
    lines = out.out.splitlines()
    you = [l for l in lines if l.strip().startswith("you:")]
    assert you and "weather" in you[0], out.out
    agent = [l for l in lines if l.startswith("agent:")]
    assert agent and "[you interrupted]" in agent[0], out.out
    # The speaker stayed silent while the user asked, then played the agent.
    loud = loud_blocks(device.played())
    end_of_question = (lead.size + speech.size) // (RATE // 50)
    assert not loud[:end_of_question].any()
    assert loud[end_of_question:].sum() >= 10, "at least 200 ms of agent audio was played"


@pytest.mark.slow
@pytest.mark.parametrize("mute", [False, True], ids=["full-duplex", "mute-while-speaking"])
def test_open_speakers_make_the_agent_stumble_over_itself_unless_the_mic_is_muted(
        server, monkeypatch, capsys, mute):
    mic = np.concatenate([silence(0.3, RATE), say(QUESTION, rate=RATE), silence(6.0, RATE)])
    device = FileDevice(mic, echo=0.5)
    args = ["--url", server.url] + (["--mute-while-speaking"] if mute else [])
    rc, out = run_talk(monkeypatch, capsys, device, *args)
    assert rc == 0, out.err
    agent = [l for l in out.out.splitlines() if l.startswith("agent:")]
    assert agent, out.out
    if mute:
        assert "half duplex" in out.out
        assert all("[you interrupted]" not in l and "[held]" not in l for l in agent), out.out
        assert loud_blocks(device.played()).sum() >= 150, "3 s of the agent played uncut"
    else:
        # the echo is speech over the agent: it cuts the agent off (VAD policy) or keeps
        # holding it for what sounds like the user's "mm-hm"s (VAP policy)
        assert "[you interrupted]" in agent[0] or agent[0].count("[held]") >= 2, agent[0]


def test_an_unreachable_server_is_reported_in_plain_words(monkeypatch, capsys):
    device = FileDevice(silence(0.1, RATE))
    rc, out = run_talk(monkeypatch, capsys, device, "--url", "ws://127.0.0.1:9/ws")
    assert rc == 1 and "cannot reach the server at ws://127.0.0.1:9/ws" in out.err


def test_devices_are_listed_and_an_unknown_device_is_refused(capsys):
    assert talk.main(["--list-devices"]) == 0  # the real PortAudio query
    assert capsys.readouterr().out.strip()
    with pytest.raises(DeviceError, match="list-devices"):
        open_device("no such microphone", None)
