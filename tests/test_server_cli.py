"""`duplex serve` as a user runs it: a real process, real signals."""
import asyncio
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from duplex.clients.session_client import DuplexClient


def start_server(*args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "duplex", "serve", "--profile", "test",
                             "--port", "0", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(r"socket (ws://\S+/ws)", line)
        if m:
            return proc, m.group(1)
    proc.kill()
    pytest.fail("server did not start:\n" + "".join(lines))


@pytest.mark.slow
def test_sigterm_closes_sessions_with_going_away_and_exits_cleanly():
    proc, url = start_server()
    try:
        async def main():
            c = DuplexClient(url)
            session = await c.open()
            os.kill(proc.pid, signal.SIGTERM)
            await asyncio.wait_for(c.ws.wait_closed(), 20)
            return session, c.ws.close_code

        session, code = asyncio.run(main())
        assert session["models"]["llm"] == "hf:tiny-random"
        assert code == 1001
        assert proc.wait(20) == 0
        out = proc.stdout.read()
        assert "shutting down" in out and "Traceback" not in out
    finally:
        if proc.poll() is None:
            proc.kill()


def test_bad_config_and_missing_models_are_named_clearly(tmp_path):
    bad = subprocess.run([sys.executable, "-m", "duplex", "serve", "--set", "nope.key=1"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unknown key 'nope.key'" in bad.stderr
    missing = tmp_path / "no-such-model"
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    res = subprocess.run([sys.executable, "-m", "duplex", "serve", "--profile", "test",
                          "--set", f"llm.model={missing}"], capture_output=True, text=True,
                         timeout=120, env=env)
    assert res.returncode == 1
    assert str(missing) in res.stderr and "local" in res.stderr
