"""Dialogue data for the flatten recipe: synthetic Switchboard dialogues spoken
by espeak-ng, and the moshi-finetune layout they are written in."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from duplex.recipes.data.moshi_format import AGENT, USER, read_manifest, write_clip, write_manifest
from duplex.recipes.data.synth_dialogues import build_dataset, render_dialogue, spoken_text

from duplex.data.switchboard import load_dialogues

RATE = 24000


@pytest.fixture(scope="module")
def dialogue(switchboard):
    return next(load_dialogues(switchboard, limit=1))


def rms(audio, start, end):
    seg = audio[int(start * RATE):int(end * RATE)]
    return float(np.sqrt(np.mean(seg ** 2))) if seg.size else 0.0


def test_switchboard_tokens_become_speakable_words():
    assert spoken_text("[laughter-yes]") == "yes"
    assert spoken_text("okay_1") == "okay"
    assert spoken_text("an[y]-") == "an"
    assert spoken_text("uh-huh") == "uh-huh"
    assert spoken_text("[noise]") is None and spoken_text("[laughter]") is None


def test_words_are_spoken_at_their_switchboard_times_on_their_channel(dialogue):
    s = render_dialogue(dialogue, agent="A", rate=RATE, start_s=0.0, duration_s=12.0)
    assert len(s.agent) == len(s.user) == 12 * RATE
    a_words = [w for w in dialogue.words[0] if w[0] < 12 and spoken_text(w[2])]
    assert [w.text for w in s.agent_words] == [spoken_text(w[2]) for w in a_words]
    assert [w.start for w in s.agent_words] == [w[0] for w in a_words]
    for words, own, other in ((s.agent_words, s.agent, s.user), (s.user_words, s.user, s.agent)):
        for w in words:  # each word's first 60 ms carry speech on its own channel
            assert rms(own, w.start, w.start + 0.06) > 0.01, w
    # where one speaker says nothing for a while, their channel is silent
    busy = np.zeros(12 * RATE, bool)
    for start, end, _ in dialogue.words[0]:
        busy[int(start * RATE):int(end * RATE) + RATE // 10] = True
    assert np.abs(s.agent[~busy]).max() < 1e-3
    # the user side speaks "okay" at 0.82 s, before the agent's first word
    assert s.user_words[0].text == "okay" and rms(s.user, 0.85, 0.95) > 0.01


def test_moshi_layout_round_trip(tmp_path, dialogue):
    s = render_dialogue(dialogue, agent="B", rate=RATE, start_s=5.0, duration_s=6.0)
    clip = write_clip(tmp_path / "data" / "clips" / "x.wav", s.agent, s.user, RATE,
                      s.agent_words, s.user_words)
    manifest = write_manifest(tmp_path / "data" / "train.jsonl", [clip])
    assert json.loads(manifest.read_text()) == {"path": "clips/x.wav", "duration": 6.0}
    stereo, sr = sf.read(tmp_path / "data" / "clips" / "x.wav")
    assert sr == RATE and stereo.shape == (6 * RATE, 2)  # left = agent, right = user
    meta = json.loads((tmp_path / "data" / "clips" / "x.json").read_text())
    assert {spk for _, _, spk in meta["alignments"]} == {AGENT, USER}

    (back,) = read_manifest(manifest)
    agent, user, rate = back.load_audio()
    assert rate == RATE and back.duration == 6.0
    np.testing.assert_allclose(agent, s.agent, atol=1 / 32768 + 1e-6)
    np.testing.assert_allclose(user, s.user, atol=1 / 32768 + 1e-6)
    assert [(w.text, w.start) for w in back.words(agent=True)] == \
        [(w.text, round(w.start, 4)) for w in s.agent_words]
    assert [w.text for w in back.words(agent=False)] == [w.text for w in s.user_words]
    agent16, _, r16 = back.load_audio(16000)
    assert r16 == 16000 and len(agent16) == 6 * 16000


@pytest.mark.usefixtures("switchboard")
def test_build_dataset_writes_clips_of_the_requested_length(tmp_path):
    path = build_dataset(tmp_path, limit=1, clip_s=3.0, clips_per_dialogue=2)
    clips = read_manifest(path)
    assert len(clips) == 2 and all(c.duration == 3.0 for c in clips)
    assert all(0 <= w.start < 3.0 for c in clips for w in c.words(True) + c.words(False))


def test_bad_data_gets_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_manifest(tmp_path / "none.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"path": "a.wav"}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        read_manifest(bad)
    sf.write(tmp_path / "mono.wav", np.zeros(100, np.float32), RATE)
    (tmp_path / "mono.json").write_text('{"alignments": [["hi", [0, 0.1], "SPEAKER_MAIN"]]}')
    bad.write_text('{"path": "mono.wav", "duration": 0.1}\n')
    (clip,) = read_manifest(bad)
    with pytest.raises(ValueError, match="expected stereo"):
        clip.load_audio()
    (tmp_path / "mono.json").write_text('{"alignments": [["hi", 0.1, "SPEAKER_MAIN"]]}')
    with pytest.raises(ValueError, match="alignment 0 is not"):
        read_manifest(bad)
    (tmp_path / "mono.json").unlink()
    with pytest.raises(FileNotFoundError, match="no alignment file"):
        read_manifest(bad)
