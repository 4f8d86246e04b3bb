"""LivePlayer: the jitter-buffered playback FIFO behind `duplex talk`'s speaker."""
import numpy as np
import pytest

from duplex.clients.player import LivePlayer

RATE = 1000  # 1 sample per ms keeps the arithmetic readable


def ramp(n, start=1):
    return np.arange(start, start + n, dtype=np.float32) / 10_000


def test_playback_waits_for_the_jitter_buffer_then_plays_in_order():
    p = LivePlayer(RATE, jitter_ms=30)
    p.push(ramp(20), "r1")
    assert not p.read(10).any(), "20 ms buffered is below the 30 ms jitter buffer"
    p.push(ramp(20, 21), "r1")
    out = np.concatenate([p.read(10) for _ in range(4)])
    np.testing.assert_array_equal(out, ramp(40))
    assert p.played_ms("r1") == 40 and p.played_out == 40


def test_an_underrun_refills_the_jitter_buffer_before_playing_again():
    p = LivePlayer(RATE, jitter_ms=30)
    p.push(ramp(30), "r1")
    out = p.read(40)
    np.testing.assert_array_equal(out[:30], ramp(30))
    assert not out[30:].any() and not p.playing
    p.push(ramp(10, 31), "r1")
    assert not p.read(10).any(), "10 ms is not enough to restart"
    p.complete()  # ...unless the response's audio is complete
    np.testing.assert_array_equal(p.read(10), ramp(10, 31))


def test_flush_drops_everything_unplayed_and_reports_what_was_played():
    p = LivePlayer(RATE, jitter_ms=0)
    p.push(ramp(100), "r1")
    p.read(25)
    played, dropped = p.flush()
    assert played == {"r1": 25} and dropped == 75
    assert not p.read(50).any() and not p.active
    p.push(ramp(10), "r2")  # the next response plays normally
    assert p.read(10).any() and p.played_ms("r2") == 10


def test_pause_holds_the_buffer_and_resume_carries_on():
    p = LivePlayer(RATE, jitter_ms=0)
    p.push(ramp(40), "r1")
    first = p.read(10)
    p.pause()
    assert not p.read(20).any() and p.buffered == 30
    p.resume()
    np.testing.assert_array_equal(np.concatenate([first, p.read(30)]), ramp(40))


def test_bad_rate_is_refused():
    with pytest.raises(ValueError, match="rate"):
        LivePlayer(0)


# ------------------------------------------------ the playback timeline (duplex/playback.py)
def test_timeline_holds_audio_through_a_pause_and_an_interruption_cuts_at_the_pause():
    """What `duplex call` and the virtual runner believe the user heard."""
    from duplex.playback import PlaybackTimeline

    def timeline():
        tl = PlaybackTimeline(rate=100)
        tl.on_event({"type": "output_audio_buffer.started", "response_id": "r"}, 0.0)
        tl.on_audio(np.ones(300, np.float32), 0.0)  # 3 s of agent audio queued at once
        tl.on_event({"type": "output_audio_buffer.paused", "response_id": "r"}, 1.0)
        return tl

    resumed = timeline()
    resumed.on_event({"type": "output_audio_buffer.resumed", "response_id": "r"}, 1.5)
    assert [(p.start, p.end) for p in resumed.pieces] == [(0.0, 1.0), (1.5, 3.5)]
    assert resumed.played_s(1.4) == pytest.approx(1.0)  # silent while held
    cut = timeline()
    cut.on_event({"type": "response.interrupted", "response_id": "r"}, 1.8)
    assert cut.played_s(10.0) == pytest.approx(1.0), "nothing played after the pause"
    assert not cut.playing(1.2)
