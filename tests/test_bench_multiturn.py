"""Multi-turn audio challenge (M9): the Audio MultiChallenge format, the shipped
sample set, playing a conversation over a real socket, the judges; and the
ASR option for agent words."""
import asyncio
import io
import json

import numpy as np
import pytest
import soundfile as sf
from conftest import say
from duplex.recipes.bench import multiturn as MT
from duplex.recipes.bench.judge import (
    HFJudge,
    JudgeConfig,
    OpenAIJudge,
    build_judge,
    messages_for,
    parse_verdict,
)
from duplex.recipes.bench.runner import SocketBackend, full_track
from duplex.recipes.bench.speech import Speaker

from duplex.bench.timeline import voiced_segments


def test_the_shipped_set_covers_the_four_axes_and_loads_back_from_disk(tmp_path):
    rows = json.loads(MT.DATA.read_text())
    axes = {"inference_memory", "instruction_retention", "self_coherence", "voice_editing"}
    assert {r["axis"] for r in rows} == axes
    assert all(sum(r["axis"] == a for r in rows) >= 3 for a in axes)
    convs = MT.builtin_conversations(Speaker(tmp_path / "cache"), limit_per_axis=1)
    assert sorted(c.axis for c in convs) == sorted(axes)
    MT.write_conversations(convs, tmp_path / "mt")
    back = MT.load_conversations(tmp_path / "mt")
    assert [c.id for c in back] == [c.id for c in convs]
    assert back[0].turns[0].rate == 16000 and back[0].turns[0].audio.size == convs[0].turns[0].audio.size
    assert back[0].rubric == convs[0].rubric


def test_rows_in_the_datasets_audio_forms_are_read(tmp_path):
    buf = io.BytesIO()
    sf.write(buf, np.full(4800, 0.1, np.float32), 48000, format="WAV")
    row = {"id": 7, "axis": "self_coherence", "rubric": json.dumps([{"criterion": "Is it blue?"}]),
           "user_turn_1_audio": {"array": np.zeros(480).tolist(), "sampling_rate": 48000},
           "user_turn_2_audio": {"bytes": buf.getvalue(), "path": None},
           "user_turn_1_transcript": "hi", "user_turn_2_transcript": "what colour is the sky"}
    conv = MT.conversation_from_row(row, tmp_path)
    assert [t.rate for t in conv.turns] == [48000, 48000] and conv.turns[1].audio.size == 4800
    assert conv.rubric == ["Is it blue?"]
    assert MT.parse_rubric("- first\n- second", "x") == ["first", "second"]
    with pytest.raises(ValueError, match="no rubric"):
        MT.parse_rubric([], "conversation 7")
    with pytest.raises(ValueError, match="neither audio nor a transcript"):
        MT.conversation_from_row({"id": 1, "axis": "a", "rubric": ["x"], "user_turn_1_transcript": ""},
                                 tmp_path)
    with pytest.raises(ValueError, match="cannot read audio"):
        MT.conversation_from_row({"id": 1, "axis": "a", "rubric": ["x"], "user_turn_1_audio": "nope.wav"},
                                 tmp_path)


@pytest.mark.slow
def test_a_conversation_over_a_real_socket_waits_for_each_answer(server):
    conv = MT.Conversation("c", "voice_editing", [MT.Turn("hello there", say("hello there"), 16000),
                                                  MT.Turn("set a timer", say("set a timer please"), 16000)],
                           ["mentions a timer"])
    record, starts = asyncio.run(MT.play_socket(conv, SocketBackend(server.url, tail_s=1.0)))
    said = MT.answers(record, conv, starts)
    assert len(said) == 2 and all(said)
    first_answer = [s for s, e in voiced_segments(full_track(record), record.output_rate) if s < starts[1]]
    assert first_answer, "the agent answered the first turn before the second came"
    agent_end = max(e for s, e in voiced_segments(full_track(record), record.output_rate) if s < starts[1])
    assert starts[1] >= agent_end + MT.GAP_S - 0.1


def test_judge_prompts_carry_the_conversation_and_verdicts_parse():
    msgs = messages_for([("hi", "hello"), ("timer?", "")], "fifteen minutes", "Says fifteen?")
    text = msgs[-1]["content"]
    assert "User: hi\nAssistant: hello\nUser: timer?" in text and "fifteen minutes" in text
    assert [parse_verdict(t) for t in ("Yes.", " no", "Maybe", "")] == [True, False, None, None]
    assert build_judge(JudgeConfig()) is None
    with pytest.raises(ValueError, match="http"):
        OpenAIJudge(JudgeConfig("openai", url="ftp://x", model="m"))
    with pytest.raises(RuntimeError, match="judge endpoint"):
        OpenAIJudge(JudgeConfig("openai", url="http://127.0.0.1:9/v1", model="m", timeout_s=2)).verdict(msgs)


def test_a_local_transformers_judge_gives_a_verdict_for_every_item():
    judge = HFJudge(JudgeConfig("hf", model="tiny-random", device="cpu"))  # random weights: plumbing only
    msgs = messages_for([("hi", "")], "fifteen minutes", "Says fifteen?")
    first = judge.verdict(msgs)
    assert isinstance(first, bool) and judge.verdict(msgs) == first  # deterministic


@pytest.mark.slow
def test_agent_words_can_come_from_asr_of_the_agent_audio(model_cache):
    from duplex.models.tiny import build_tiny_whisper_ct2
    from duplex.recipes.bench.asr_words import PAD_S, WhisperWords

    path = build_tiny_whisper_ct2(model_cache / "whisper-ct2")  # random weights: the words are noise
    track = np.zeros(24000 * 6, np.float32)
    track[24000:72000] = 0.3 * np.sin(2 * np.pi * 200 * np.arange(48000) / 24000)
    words = WhisperWords(str(path))(track, 24000)
    assert words and all(1.0 - PAD_S - 1e-6 <= w.start <= w.end <= 3.0 + PAD_S for w in words)
