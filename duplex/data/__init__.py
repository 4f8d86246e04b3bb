"""Readers for the dialogue data the recipes and benchmarks use."""
