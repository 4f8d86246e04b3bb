"""The flatten recipe: fine-tune a causal LM into a flattened speech-text
duplex model (`duplex train flatten`, see `train`) and benchmark its
streaming engine (`python -m duplex.recipes.flatten.bench`)."""
