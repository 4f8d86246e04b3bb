"""Dialogue data shared by the recipes: the moshi-finetune layout and synthetic dialogues."""
