"""Shared test fixtures.

Speech in tests is real: espeak-ng renders it (Debian package espeak-ng).
Models that cannot be downloaded here are built small and random by the
tests themselves and cached for the session under a temporary directory.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from duplex.audio import resample

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def say(text: str, voice: str = "en-us", rate: int = 16000, speed: int = 160) -> np.ndarray:
    """Render `text` with espeak-ng; float32 mono at `rate`."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed (apt install espeak-ng); .ci/run installs it")
    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", f.name, text],
                       check=True, capture_output=True)
        audio, sr = sf.read(f.name, dtype="float32")
    return resample(audio, sr, rate)


def silence(seconds: float, rate: int = 16000) -> np.ndarray:
    return np.zeros(int(round(seconds * rate)), dtype=np.float32)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests leave files worth looking at (screenshots, plots, reports)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """A per-run directory for the small models tests build."""
    return tmp_path_factory.mktemp("models")
