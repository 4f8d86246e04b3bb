"""Fixtures shared by the tests/test_flatten_*.py files (import them by name).

Models are built small and random: the tiny test LM (duplex.models.tiny) and
a tiny random Mimi, cached for the session in `model_cache`."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: the CI machine has 2 shared cores, and torch's threads
    spin against each other (and other jobs) when they oversubscribe them."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def llm_dir(model_cache):
    from duplex.models.tiny import ensure_tiny_llm

    return ensure_tiny_llm(model_cache / "tiny-llm")


@pytest.fixture(scope="module")
def codec_dir(model_cache):
    from duplex.models.codec import save_random_codec

    path = model_cache / "mimi-tiny-flatten"
    return path if path.exists() else save_random_codec(path, "mimi", tiny=True)
