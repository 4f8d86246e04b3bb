"""The one command line: every command is reachable, mistakes get usage, not tracebacks."""
import subprocess
import sys


def duplex(*args):
    return subprocess.run([sys.executable, "-m", "duplex", *args], capture_output=True,
                          text=True, timeout=120)


def test_help_lists_every_command():
    out = duplex("--help").stdout
    for command in ("serve", "talk", "call", "bench", "train", "eval"):
        assert f"  {command}" in out


def test_mistakes_get_usage_not_tracebacks():
    for args, expected in [(("fly",), "unknown command 'fly'"),
                           (("train",), "usage: duplex train {vap|lexical|tdm|flatten}"),
                           (("eval", "flatten"), "usage: duplex eval {vap|tdm}")]:
        res = duplex(*args)
        assert res.returncode != 0 and expected in res.stderr + res.stdout
        assert "Traceback" not in res.stderr


def test_each_command_answers_help():
    for args in (("serve",), ("talk",), ("call",), ("bench",), ("train", "vap"), ("train", "lexical"), ("train", "tdm"),
                 ("train", "flatten"), ("eval", "vap"), ("eval", "tdm")):
        res = duplex(*args, "--help")
        assert res.returncode == 0 and "usage:" in res.stdout, (args, res.stderr[-500:])
