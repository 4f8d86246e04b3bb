"""The one command line: `duplex <command> ...`.

Each command lives in its own module and is imported only when used, so
`duplex --help` is instant and a recipe's heavy imports never slow the server.
A command module exposes `main(argv: list[str]) -> int | None`.
"""
from __future__ import annotations

import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("duplex.server.app", "run the WebSocket server and the browser page"),
    "talk": ("duplex.clients.talk", "talk to a server with this machine's microphone and speaker"),
    "call": ("duplex.clients.call", "stream a WAV file to a server and record the conversation"),
    "bench": ("duplex.recipes.bench.cli", "benchmarks: turn-taking, pause, backchannel, "
              "interruption, multi-turn; `bench loop` for the server's own overhead"),
    "train": ("", "train a model: `duplex train vap|lexical|tdm|flatten ...`"),
    "eval": ("", "evaluate a model: `duplex eval vap|tdm ...`"),
}
RECIPES = {"train": ("vap", "lexical", "tdm", "flatten"), "eval": ("vap", "tdm")}
# recipes that are not `duplex.recipes.<name>.train|evaluate`
MODULES = {("train", "lexical"): "duplex.recipes.vap.lexical"}


def _usage() -> str:
    lines = ["usage: duplex <command> [args...]", "", "commands:"]
    lines += [f"  {name:<8} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "`duplex <command> --help` for a command's options."]
    return "\n".join(lines)


def _resolve(argv: list[str]) -> tuple[str, list[str]]:
    command, rest = argv[0], argv[1:]
    if command in RECIPES:
        names = RECIPES[command]
        if not rest or rest[0] not in names:
            raise SystemExit(f"usage: duplex {command} {{{'|'.join(names)}}} [args...]")
        module = "train" if command == "train" else "evaluate"
        return MODULES.get((command, rest[0]), f"duplex.recipes.{rest[0]}.{module}"), rest[1:]
    if command not in COMMANDS:
        raise SystemExit(f"duplex: unknown command {command!r}\n\n{_usage()}")
    return COMMANDS[command][0], rest


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] == "--version":
        from duplex import __version__

        print(__version__)
        return 0
    module_name, rest = _resolve(argv)
    module = importlib.import_module(module_name)
    result = module.main(rest)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
