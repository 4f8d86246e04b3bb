"""The dialogue history: what was said, as the user heard it."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Item:
    id: str
    role: str  # "user" | "assistant"
    text: str
    interrupted: bool = False
    full_text: str | None = None  # what the agent meant to say, when cut short


@dataclass
class History:
    items: list[Item] = field(default_factory=list)

    def add(self, item: Item) -> Item:
        self.items.append(item)
        return item

    def get(self, item_id: str) -> Item | None:
        return next((it for it in reversed(self.items) if it.id == item_id), None)

    def messages(self, instructions: str, max_items: int = 20) -> list[dict]:
        """Chat messages for an LLM: system prompt, then the last items.

        Consecutive messages of one role are merged (some chat templates
        require alternation), and empty ones dropped.
        """
        msgs: list[dict] = []
        for it in self.items[-max_items:] if max_items else self.items:
            text = it.text.strip()
            if not text:
                continue
            if msgs and msgs[-1]["role"] == it.role:
                msgs[-1]["content"] += " " + text
            else:
                msgs.append({"role": it.role, "content": text})
        while msgs and msgs[0]["role"] == "assistant":
            msgs.pop(0)  # templates expect the user to speak first
        return [{"role": "system", "content": instructions}] + msgs
