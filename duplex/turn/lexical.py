"""Lexical end-of-turn cue: how likely the speaker is done, from the words so far.

Voice activity alone says little at the start of a silence about who speaks
next (the VAP report: shift/hold AUC 0.61). The words say more: a turn that
stops on "for", "the" or "uh" goes on; one that ends in "yeah" or started
with "what" has often ended. This is a logistic regression over a few
sparse features of the current turn's words (last one, two and three words,
first one and two, length), trained on the Switchboard word timings by
`recipes/vap/lexical.py`; scoring is a handful of dictionary lookups, cheap
enough for the session core. The weights ship as JSON next to the VAP
checkpoint.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Iterable, Sequence

FORMAT = "duplex-lexical-eot/1"
MAX_WORDS = 30  # features look at the end and the start of this many last words
_CLEAN = re.compile(r"[^a-z'-]+")


def normalize(words: str | Iterable[str]) -> list[str]:
    """Lower-case word tokens, the same for ASR text and Switchboard transcripts:
    noise marks and word fragments ("an[y]-") dropped, "[laughter-yes]" -> "yes"."""
    if isinstance(words, str):
        words = words.split()
    out = []
    for w in words:
        w = w.lower()
        if w.startswith("[laughter-") and w.endswith("]"):
            w = w[len("[laughter-"):-1]
        elif w.startswith("[") and w.endswith("]"):
            continue  # [noise], [laughter], [vocalized-noise]
        if w.endswith("-") or w.startswith("-"):
            continue  # a cut-off fragment
        w = _CLEAN.sub("", re.sub(r"_\d+$", "", w)).strip("-'")
        if w:
            out.append(w)
    return out


def _bucket(n: int) -> str:
    for top, name in ((1, "1"), (2, "2"), (3, "3"), (5, "4-5"), (10, "6-10"), (20, "11-20")):
        if n <= top:
            return name
    return "21+"


def features(words: Sequence[str]) -> list[str]:
    """Sparse features of a turn's (normalized) words; [] for no words."""
    w = list(words)[-MAX_WORDS:]
    if not w:
        return []
    f = [f"l1={w[-1]}", f"f1={w[0]}", f"n={_bucket(len(w))}"]
    if len(w) >= 2:
        f += [f"l2={w[-2]} {w[-1]}", f"f2={w[0]} {w[1]}"]
    if len(w) >= 3:
        f.append(f"l3={' '.join(w[-3:])}")
    return f


class LexicalTurnEnd:
    """P(shift | the current turn's words), a logistic regression."""

    def __init__(self, weights: dict[str, float], bias: float, meta: dict | None = None):
        self.weights, self.bias, self.meta = dict(weights), float(bias), dict(meta or {})

    @classmethod
    def load(cls, path: str | Path) -> "LexicalTurnEnd":
        p = Path(path)
        try:
            d = json.loads(p.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"lexical end-of-turn weights not found: {p}") from None
        except ValueError as e:
            raise ValueError(f"{p} is not lexical end-of-turn JSON: {e}") from None
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ValueError(f"{p} is not {FORMAT} weights")
        return cls(d["weights"], d["bias"], d.get("meta"))

    def to_dict(self) -> dict:
        return {"format": FORMAT, "bias": self.bias, "weights": self.weights, "meta": self.meta}

    def feature_logit(self, feats: Iterable[str]) -> float:
        """The regression's logit for already extracted features (the bias for none)."""
        return self.bias + sum(self.weights.get(k, 0.0) for k in feats)

    def logit(self, words: str | Iterable[str]) -> float | None:
        f = features(normalize(words))
        return self.feature_logit(f) if f else None

    def p_shift(self, words: str | Iterable[str]) -> float | None:
        """Probability that the turn ends here (None when there are no words yet)."""
        z = self.logit(words)
        return None if z is None else 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
