"""Benchmark formulas and formats (sans-I/O): metrics M4-M9 of REFERENCE.md §5,
agent timelines from call records, and scenario scripts. The runner, the
scenario renderer and the reports are in duplex.recipes.bench."""
