"""Voice Activity Projection: labels, events and metrics (pure numpy, no model code).

The model, its streaming runtime and export live in `duplex.models.vap`;
training and evaluation in `duplex.recipes.vap`.
"""
