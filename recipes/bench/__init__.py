"""Full-duplex behaviour benchmarks: `duplex bench` (see cli.py)."""
