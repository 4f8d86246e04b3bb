"""The lexical end-of-turn cue: word normalisation shared by ASR text and the
Switchboard transcripts, its features, the shipped weights, and the recipe
that trains and evaluates it on Switchboard."""
import json

import numpy as np
import pytest

from duplex.turn.lexical import FORMAT, LexicalTurnEnd, features, normalize


def test_asr_text_and_switchboard_marks_normalise_to_the_same_words():
    assert normalize("Is it far to Paris?") == ["is", "it", "far", "to", "paris"]
    assert normalize(["[laughter-yes]", "an[y]-", "okay_1", "[noise]", "Uh-huh", "don't"]) == \
        ["yes", "okay", "uh-huh", "don't"]
    assert normalize("") == [] and normalize("[vocalized-noise]") == []


def test_features_look_at_the_end_and_the_start_of_the_turn():
    f = features(["so", "what", "do", "you", "think"])
    assert f == ["l1=think", "f1=so", "n=4-5", "l2=you think", "f2=so what", "l3=do you think"]
    assert features(["yeah"]) == ["l1=yeah", "f1=yeah", "n=1"]
    assert features([]) == []


def test_scores_are_a_logistic_regression_and_bad_weights_are_refused(tmp_path):
    m = LexicalTurnEnd({"l1=for": -2.0, "f1=what": 1.0}, bias=0.5)
    assert m.logit("what is it for") == pytest.approx(0.5 - 2.0 + 1.0)
    assert m.p_shift("what is it for") == pytest.approx(1 / (1 + np.exp(0.5)))
    assert m.p_shift("[noise]") is None  # nothing said yet: no opinion
    p = tmp_path / "w.json"
    p.write_text(json.dumps(m.to_dict()))
    assert LexicalTurnEnd.load(p).p_shift("what is it for") == m.p_shift("what is it for")
    p.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match=FORMAT):
        LexicalTurnEnd.load(p)
    with pytest.raises(FileNotFoundError, match="lexical end-of-turn weights not found"):
        LexicalTurnEnd.load(tmp_path / "missing.json")


def test_shipped_weights_rank_real_switchboard_turn_ends(switchboard):
    """On test dialogues the shipped weights put shifts above holds (AUC), and the
    policy's 'unfinished' band holds far more holds than shifts."""
    from duplex.data.switchboard import load_dialogues
    from duplex.models.registry import LEXICAL_WEIGHTS
    from duplex.recipes.vap.lexical import points
    from duplex.vap import metrics

    m = LexicalTurnEnd.load(LEXICAL_WEIGHTS)
    feats, ys = points(list(load_dialogues(switchboard, "test", 20)), progress=False)
    p = 1 / (1 + np.exp(-np.array([m.feature_logit(f) for f in feats])))
    assert metrics.auc(p, ys) > 0.7
    unfinished = p < 0.2  # the default turn.words_hold_threshold
    assert unfinished[~ys].mean() > 3 * unfinished[ys].mean()
    for words in ("I would like to book a table for", "and then uh"):
        assert m.p_shift(words) < 0.2, words


@pytest.mark.slow
def test_recipe_trains_weights_and_reports_words_and_vap(switchboard, tmp_path, capsys):
    from duplex.recipes.vap import lexical

    out, rep = tmp_path / "lexical.json", tmp_path / "report.json"
    assert lexical.main(["--data", str(switchboard), "--limit", "8", "--out", str(out),
                         "--report", str(rep), "--no-progress"]) == 0
    report = json.loads(rep.read_text())
    assert report == json.loads(capsys.readouterr().out)
    m = LexicalTurnEnd.load(out)
    assert m.weights and m.meta["points"][0] > 0
    for key in ("words", "vap", "vap_and_words"):
        r = report[key]
        assert 0 <= r["bacc"] <= 1 and 0 <= r["auc"] <= 1 and sum(r["events"]) > 0
    assert report["words"]["auc"] > 0.55  # even 8 dialogues carry lexical signal


def test_replayed_policy_with_words_matches_the_rules_by_hand():
    """words_compare's vectorised take-over times (ms after the silence start)."""
    from duplex.config import TurnConfig
    from duplex.recipes.vap.words_compare import takeover_ms

    cfg = TurnConfig(shift_threshold=0.6, vap_end_silence_ms=500, hold_threshold=0.2, max_silence_ms=1200,
                     words_hold_threshold=0.2, words_shift_threshold=0.5, finished_gap_ms=300,
                     unfinished_max_silence_ms=2000, min_gap_ms=100, hangover_ms=60)
    n = cfg.unfinished_max_silence_ms // 20 + 1
    p_shift = np.full((4, n), 0.3)
    p_shift[1, 10:] = 0.9  # a confident projected shift from 220 ms on
    p_words = np.array([np.nan, 0.1, 0.7, 0.3])
    got = takeover_ms(p_shift, p_words, cfg)
    # no words: 500 ms; unfinished: 2000 ms despite the shift; finished: 300 ms; neither: 500 ms
    assert got.tolist() == [500.0, 2000.0, 300.0, 500.0]


@pytest.mark.slow
def test_words_compare_runs_on_a_few_dialogues(switchboard, tmp_path, capsys):
    from duplex.recipes.vap import words_compare

    assert words_compare.main(["--data", str(switchboard), "--limit", "2", "--val-limit", "1",
                               "--out", str(tmp_path), "--no-progress"]) == 0
    res = json.loads((tmp_path / "words_compare.json").read_text())
    assert res == json.loads(capsys.readouterr().out)
    rows = {r["policy"]: r for r in res["table"]}
    assert rows["silence 500 ms"]["gap_median_ms"] == 500.0
    assert 0 <= rows["vap + words (config)"]["false_takeover"] <= 1 and res["points"] > 0
