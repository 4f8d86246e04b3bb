"""Benchmark inputs: scenario scripts, their layout and annotations, rendering
with espeak-ng into the Full-Duplex-Bench layout, and reading that layout."""
import json

import numpy as np
import pytest
import soundfile as sf
from duplex.recipes.bench import fdb
from duplex.recipes.bench.scenarios import make_scenarios, switchboard_timing
from duplex.recipes.bench.speech import Speaker

from duplex.bench.scripts import Script, TimingModel, annotation, layout, silences


def script(**kw):
    base = {"id": "s1", "task": "pause", "lead": 0.5, "tail": 0.3,
            "parts": [{"say": "one"}, {"pause": 1.5}, {"say": "two"}]}
    base.update(kw)
    return Script.from_dict(base)


def lengths(s, *secs):
    return dict(zip(s.says(), secs))


def test_layout_places_parts_end_to_end_and_annotates_the_pause():
    s = script()
    lay = layout(s, lengths(s, 1.0, 2.0))
    assert [(p.start, p.end) for p in lay.placed] == [(0.5, 1.5), (3.0, 5.0)]
    assert lay.duration == pytest.approx(5.3)
    assert annotation(lay) == ("pause.json", [{"text": "[PAUSE]", "timestamp": [1.5, 3.0]}])


def test_interruption_and_turn_taking_annotations():
    s = script(task="interruption", parts=[{"say": "tell me about rome", "role": "context"},
                                           {"pause": 2.5}, {"say": "no, venice", "role": "interrupt"}])
    name, data = annotation(layout(s, lengths(s, 1.0, 1.2)))
    assert name == "interrupt.json"
    assert data == [{"text": "no, venice", "context": "tell me about rome", "interrupt": "no, venice",
                     "timestamp": [4.0, 5.2]}]
    t = script(task="turn_taking", tail=4.0, parts=[{"say": "what time is it"}])
    assert annotation(layout(t, lengths(t, 1.5))) == (
        "turn_taking.json", [{"text": "what time is it", "timestamp": [2.0, 6.0]}])


def test_a_part_at_a_chosen_time_may_overlap():
    s = script(task="backchannel", parts=[{"say": "a long story"}, {"say": "mm-hm", "at": 1.0,
                                                                       "role": "backchannel"}])
    lay = layout(s, lengths(s, 3.0, 0.4))
    assert [(p.start, p.end) for p in lay.placed] == [(0.5, 3.5), (1.0, 1.4)]
    assert lay.duration == pytest.approx(3.8)


def test_bad_scripts_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="interrupt"):
        script(task="interruption")
    with pytest.raises(ValueError, match="pause between"):
        script(parts=[{"say": "one"}, {"say": "two"}])
    with pytest.raises(ValueError, match="task"):
        script(task="dance")
    with pytest.raises(ValueError, match="draw"):
        script(parts=[{"say": "a"}, {"pause": 1, "draw": "nap"}, {"say": "b"}])


def test_silences_split_into_pauses_and_gaps():
    a = [(0.0, 1.0), (1.5, 2.0)]
    b = [(2.3, 3.0), (2.8, 4.0)]
    pauses, gaps = silences(a, b)
    assert pauses == pytest.approx([0.5]) and gaps == pytest.approx([0.3])


@pytest.mark.usefixtures("switchboard")
def test_switchboard_timing_matches_the_reference_statistics():
    model = switchboard_timing(200)
    # REFERENCE §1 (whole corpus, 10 ms frames): pauses median 370 ms, gaps median 260 ms.
    assert 0.30 < np.median(model.pools["pause"]) < 0.45
    assert 0.20 < np.median(model.pools["gap"]) < 0.32
    assert model.pools["long_pause"].min() >= 0.8
    rng = np.random.default_rng(0)
    s = script(parts=[{"say": "one"}, {"pause": 1.5, "draw": "long_pause"}, {"say": "two"}])
    pause = layout(s, lengths(s, 1.0, 1.0), model, rng).pauses[0]
    assert 0.8 <= pause[1] - pause[0] <= 3.0


def test_rendered_scenarios_are_in_the_full_duplex_bench_layout(tmp_path):
    counts = make_scenarios(tmp_path, ["pause", "interruption"], n=1, multi_turn=False,
                            speaker=Speaker(tmp_path / "cache"))
    assert counts == {"pause": 1, "interruption": 1}
    found = fdb.find_samples(tmp_path)
    (pause,), (intr,) = found["pause"], found["interruption"]
    audio, rate = sf.read(pause.input_wav, dtype="float32")
    assert rate == 16000
    s, e = pause.spans[0]
    rms = lambda a, b: np.sqrt(np.mean(audio[int(a * rate):int(b * rate)] ** 2))
    assert rms(s + 0.05, e - 0.05) < 1e-4 < rms(s - 0.3, s)  # silent pause, speech before it
    assert rms(e, e + 0.3) > 1e-3
    assert intr.text and intr.context and intr.user_span[1] > intr.user_span[0] > 0
    layout_file = json.loads((intr.dir / "scenario.json").read_text())
    assert [p["role"] for p in layout_file["parts"]] == ["context", "interrupt"]


def test_fdb_layouts_v1_and_v1_5_are_recognised(tmp_path):
    tone = np.zeros(16000, np.float32)
    for sub, name, content in [
            ("candor_turn_taking/a", "turn_taking.json", [{"text": "x", "timestamp": [1.2, 5.0]}]),
            ("v1.5/user_interruption/b", "metadata.json", {"context_text": "c", "current_turn_text": "t",
                                                            "timestamps": [2.0, 3.0]}),
            ("v1.5/user_backchannel/c", "metadata.json", {"timestamps": [2.0, 2.5]}),
            ("icc_backchannel/d", None, None), ("misc/e", None, None)]:
        d = tmp_path / sub
        d.mkdir(parents=True)
        sf.write(d / "input.wav", tone, 16000)
        if name:
            (d / name).write_text(json.dumps(content))
    with pytest.warns(UserWarning, match="without a task file"):
        found = fdb.find_samples(tmp_path)
    assert found["turn_taking"][0].turn_end == 1.2
    (intr,) = found["interruption"]
    assert (intr.version, intr.user_span, intr.text) == ("v1.5", (2.0, 3.0), "t")
    assert found["overlap"][0].category == "user_backchannel"
    assert found["backchannel"][0].id == "d"
    (tmp_path / "candor_turn_taking/a/turn_taking.json").write_text("[{]")
    with pytest.raises(ValueError, match="not valid JSON"):
        fdb.find_samples(tmp_path)


def test_unknown_voice_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="voice"):
        Speaker(tmp_path).render("hello", voice="xx-nonexistent")


def test_timing_model_refuses_an_empty_pool():
    with pytest.raises(ValueError, match="no gap"):
        TimingModel([0.5], []).draw("gap", np.random.default_rng(0))


@pytest.mark.slow
def test_local_piper_voices_join_the_espeak_voices(tmp_path, model_cache, monkeypatch):
    from duplex.models.tiny import build_tiny_piper_voice

    voice = build_tiny_piper_voice(model_cache / "piper")  # random weights: it speaks noise
    monkeypatch.setenv("PIPER_VOICES_DIR", str(voice.parent))
    make_scenarios(tmp_path, ["turn_taking"], n=5, multi_turn=False, speaker=Speaker(tmp_path / "cache"))
    fifth = json.loads((tmp_path / "turn_taking" / "turn_05" / "scenario.json").read_text())
    assert fifth["parts"][0]["voice"] == f"piper:{voice}"
    audio, _ = sf.read(tmp_path / "turn_taking" / "turn_05" / "input.wav")
    assert np.abs(audio).max() > 0.01
