"""The judge LLM that grades multi-turn answers against rubric items (M9).

Two engines, chosen by config:
- `openai`: any OpenAI-compatible chat-completions endpoint (`url` such as
  http://127.0.0.1:8001/v1, `model`, the API key read from the environment
  variable named by `api_key_env`); it is asked to answer "yes" or "no";
- `hf`: a local transformers causal LM (Hub id or directory; "tiny-random"
  is the random pipeline-test model); its verdict is whichever of "yes" and
  "no" gets the higher next-token logit, so it always gives one.
"""
from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass

SYSTEM = ("You grade a voice assistant. You are given a conversation, the assistant's final "
          "answer and one rubric item about that final answer. Reply with exactly one word: "
          "yes if the final answer meets the rubric item, no if it does not.")


@dataclass
class JudgeConfig:
    engine: str = "none"  # none | openai | hf
    url: str = ""  # openai: base URL of the endpoint (…/v1)
    model: str = ""  # openai: model name; hf: Hub id, local directory or "tiny-random"
    api_key_env: str = "OPENAI_API_KEY"
    device: str = "auto"
    timeout_s: float = 60.0


def messages_for(turns: list[tuple[str, str]], final_answer: str, item: str) -> list[dict]:
    """Chat messages asking whether `final_answer` meets `item`; `turns` are (user, assistant)."""
    lines = []
    for user, agent in turns:
        lines.append(f"User: {user}")
        if agent:
            lines.append(f"Assistant: {agent}")
    prompt = ("Conversation:\n" + "\n".join(lines) + f"\n\nFinal assistant answer: {final_answer or '(none)'}"
              f"\n\nRubric item: {item}\nIs the rubric item met? Answer yes or no.")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]


def parse_verdict(text: str) -> bool | None:
    """yes -> True, no -> False, anything else -> None."""
    m = re.search(r"[a-z]+", (text or "").lower())
    if m and m.group() in ("yes", "no"):
        return m.group() == "yes"
    return None


class OpenAIJudge:
    def __init__(self, cfg: JudgeConfig):
        if not cfg.url.startswith(("http://", "https://")):
            raise ValueError(f"--judge-url must be an http(s) URL, got {cfg.url!r}")
        if not cfg.model:
            raise ValueError("--judge-model is required with an OpenAI-compatible judge")
        base = cfg.url.rstrip("/")
        self.endpoint = base if base.endswith("/chat/completions") else base + "/chat/completions"
        self.cfg = cfg
        self.name = f"openai:{cfg.model}@{base}"

    def verdict(self, messages: list[dict]) -> bool | None:
        body = json.dumps({"model": self.cfg.model, "messages": messages, "temperature": 0,
                           "max_tokens": 4}).encode()
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.cfg.api_key_env, "")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        req = urllib.request.Request(self.endpoint, body, headers)
        try:
            with urllib.request.urlopen(req, timeout=self.cfg.timeout_s) as resp:
                data = json.loads(resp.read())
        except (urllib.error.URLError, OSError, json.JSONDecodeError) as e:
            raise RuntimeError(f"judge endpoint {self.endpoint} failed: {e}") from e
        try:
            return parse_verdict(data["choices"][0]["message"]["content"])
        except (KeyError, IndexError, TypeError) as e:
            raise RuntimeError(f"judge endpoint {self.endpoint} sent no chat completion: {data}") from e


class HFJudge:
    def __init__(self, cfg: JudgeConfig):
        import torch
        from duplex.models import hub
        from duplex.models.llm_hf import MODEL_FILES, pick_device
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if not cfg.model:
            raise ValueError("--judge-model is required with a transformers judge")
        if cfg.model == "tiny-random":
            from duplex.models.tiny import announce_tiny_model, ensure_tiny_llm

            path = ensure_tiny_llm()
            announce_tiny_model("judge")
        else:
            path = hub.snapshot("judge", cfg.model, MODEL_FILES)
        self.device = pick_device(cfg.device)
        try:
            self.tok = AutoTokenizer.from_pretrained(path)
            self.model = AutoModelForCausalLM.from_pretrained(path).to(self.device).eval()
        except (OSError, ValueError, KeyError) as e:
            raise hub.unavailable("judge", cfg.model, f"transformers cannot load {path} ({e})") from e
        self.yes = self._first_ids(["yes", " yes", "Yes", " Yes"])
        self.no = self._first_ids(["no", " no", "No", " No"])
        self.name, self._torch = f"hf:{cfg.model}", torch

    def _first_ids(self, variants: list[str]) -> list[int]:
        ids = {self.tok.encode(v, add_special_tokens=False)[0] for v in variants
               if self.tok.encode(v, add_special_tokens=False)}
        return sorted(ids)

    def verdict(self, messages: list[dict]) -> bool:
        if self.tok.chat_template:
            ids = self.tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                               return_dict=False)
        else:
            text = "\n\n".join(m["content"] for m in messages) + "\nAnswer:"
            ids = self.tok.encode(text)
        with self._torch.no_grad():
            logits = self.model(self._torch.tensor([ids], device=self.device)).logits[0, -1]
        return bool(logits[self.yes].max() > logits[self.no].max())


def build_judge(cfg: JudgeConfig):
    if cfg.engine == "openai":
        return OpenAIJudge(cfg)
    if cfg.engine == "hf":
        return HFJudge(cfg)
    if cfg.engine == "none":
        return None
    raise ValueError(f"unknown judge engine {cfg.engine!r} (known: openai, hf, none)")
