"""The VAP recipe end to end on a few Switchboard dialogues: train (with
resume), export, load in the runtime, evaluate, compare with silence
thresholds; and the stereo-audio path through a TTS-rendered corpus."""
import json

import numpy as np
import pytest

from duplex.models.vap.runtime import VAPRuntime
from duplex.recipes.vap import compare, corpus, evaluate, render, report, train

TINY = ["--limit", "3", "--dim", "16", "--heads", "2", "--cross-layers", "1", "--chunk-s", "4",
        "--batch-size", "2", "--val-every", "2", "--val-batches", "1", "--val-dialogues", "1",
        "--threads", "1", "--no-progress", "--onnx-exporter", "legacy"]


@pytest.mark.slow
def test_train_resume_export_evaluate(tmp_path, capsys, switchboard, monkeypatch):
    monkeypatch.setenv("DUPLEX_SWITCHBOARD", str(switchboard))
    out = tmp_path / "run"
    assert train.main(["--out", str(out), "--steps", "2", *TINY]) == 0
    assert train.main(["--out", str(out), "--steps", "3", "--resume", *TINY]) == 0
    printed = capsys.readouterr().out
    assert "resumed from" in printed
    meta = json.loads((out / "vap_va.json").read_text())
    assert meta["training"]["steps"] == 3 and set(meta["thresholds"]) == {
        "shift_hold", "shift_prediction", "backchannel", "short_long"}
    rt = VAPRuntime.load(out)
    o = rt.stream().step(0.9, False)
    assert sum(o.p_now) == pytest.approx(1.0, abs=1e-5)

    assert evaluate.main(["--checkpoint", str(out), "--split", "test", "--limit", "1", "--threads", "1",
                          "--no-progress", "--plot", str(tmp_path / "p.png")]) == 0
    res = json.loads(capsys.readouterr().out)
    for task in ("shift_hold", "shift_prediction", "backchannel", "short_long"):
        assert {"bacc", "weighted_f1", "auc", "n_pos", "n_neg"} <= set(res[task])
    assert res["shift_hold"]["n_pos"] + res["shift_hold"]["n_neg"] > 0
    assert (tmp_path / "p.png").stat().st_size > 1000

    assert compare.main(["--checkpoint", str(out), "--limit", "1", "--val-limit", "1", "--threads", "1",
                         "--check", "20", "--out", str(tmp_path / "cmp"), "--no-progress"]) == 0
    res = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    rows = {r["policy"]: r for r in res["table"]}
    assert {"vap (default config)", "silence 300 ms", "silence 500 ms", "silence 800 ms",
            "vap matched to 500 ms"} <= set(rows)
    # a silence threshold of T answers every shift after exactly T ms
    assert rows["silence 500 ms"]["gap_median_ms"] == 500
    # the real policy classes, replayed, take the floor when the vectorised replay says
    chk = res["policy_replay_check"]
    assert chk["agree_within_a_frame"] == chk["checked"] > 0

    rep_dir = tmp_path / "report"
    assert report.main(["--checkpoint", str(out), "--out", str(rep_dir), "--limit", "1", "--noisy-limit",
                        "1", "--val-limit", "1", "--threads", "1", "--no-progress"]) == 0
    rep = json.loads((rep_dir / "report.json").read_text())
    assert rep["bench"]["step_ms_median"] > 0 and rep["test"]["info"]["dialogues"] == 1
    assert "| shift_hold |" in (rep_dir / "report.md").read_text()
    assert (rep_dir / "compare.png").exists() and (rep_dir / "projection.png").exists()


@pytest.mark.slow
def test_rendered_stereo_corpus_trains_the_audio_model(tmp_path, switchboard, monkeypatch):
    monkeypatch.setenv("DUPLEX_SWITCHBOARD", str(switchboard))
    data = tmp_path / "tts"
    for split in ("train", "val"):
        assert render.main(["--out", str(data), "--split", split, "--limit", "1", "--max-seconds", "20"]) == 0
    items = corpus.load_corpus(data)
    assert {it.split for it in items} == {"train", "val"}
    it = items[0]
    assert it.audio.shape == (2, len(it.va) * 320)
    # the rendered speech is where the timings say: louder in voiced frames
    frames = it.audio.reshape(2, -1, 320)
    rms = np.sqrt((frames ** 2).mean(-1)).T  # (frames, 2)
    for k in (0, 1):
        voiced = it.va[:, k] > 0.5
        if voiced.any() and (~voiced).any():
            assert rms[voiced, k].mean() > 5 * rms[~voiced, k].mean()
    out = tmp_path / "audio_run"
    assert train.main(["--input", "audio", "--corpus", str(data), "--out", str(out), "--steps", "2",
                       *TINY]) == 0
    rt = VAPRuntime.load(out / "vap_audio.onnx")
    assert rt.kind == "audio"
    o = rt.stream().step_audio(it.audio[0, :320], it.audio[1, :320])
    assert 0.0 <= o.p_now[0] <= 1.0


def test_corpus_annotation_formats(tmp_path):
    words = corpus.annotation_words({"alignments": [["hi", [0.0, 0.5], "B"], ["yo", [1.0, 1.2], "A"]]})
    assert words == ([[1.0, 1.2, "yo"]], [[0.0, 0.5, "hi"]])  # names in sorted order
    words = corpus.annotation_words({"segments": [[0.0, 1.0, 1]], "speakers": ["agent", "user"]}
                                    | {"segments": [[0.0, 1.0, "user"]]})
    assert words == ([], [[0.0, 1.0, "x"]])
    with pytest.raises(ValueError, match="3 speakers"):
        corpus.annotation_words({"segments": [[0, 1, "a"], [1, 2, "b"], [2, 3, "c"]]})
    with pytest.raises(ValueError, match="alignments"):
        corpus.annotation_words({})
    with pytest.raises(FileNotFoundError):
        corpus.load_corpus(tmp_path / "missing")
