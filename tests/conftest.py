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
def switchboard() -> Path:
    """The shared Switchboard word timings; tests that need them skip (saying so) without."""
    from duplex.data.switchboard import default_path

    path = default_path()
    if not path.exists():
        pytest.skip(f"Switchboard word timings not found ({path}); set DUPLEX_SWITCHBOARD")
    return path


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """A per-run directory for the small models tests build."""
    return tmp_path_factory.mktemp("models")


class ServerThread:
    """A real `duplex serve` server on its own event loop thread, port chosen by the OS."""

    def __init__(self, cfg, models):
        import asyncio
        import threading

        from duplex.server.app import DuplexServer

        self.loop = asyncio.new_event_loop()
        self.server = DuplexServer(cfg, models)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.run(self.server.start("127.0.0.1", 0))
        self.url = f"ws://127.0.0.1:{self.server.port}/ws"
        self.http = f"http://127.0.0.1:{self.server.port}"

    def run(self, coro, timeout: float = 30):
        """Run a coroutine on the server's loop and wait for its result."""
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self):
        self.run(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@pytest.fixture(scope="session")
def test_config():
    """The `--profile test` config (offline pipeline-test models)."""
    from duplex.config import load_config

    return load_config("test")


@pytest.fixture(scope="session")
def test_models(test_config):
    from duplex.models.registry import load_models

    return load_models(test_config)


@pytest.fixture(scope="module")
def server(test_config, test_models):
    srv = ServerThread(test_config, test_models)
    yield srv
    srv.stop()
