"""`duplex serve`: the WebSocket server and the browser page.

    duplex serve [--profile test] [--host 127.0.0.1] [--port 8000] [--token SECRET]

The socket is at /ws; the page (clients/web) at /. Models are loaded once at
start and shared by every session; a session's failures end at its socket.
"""
from __future__ import annotations

import argparse
import asyncio
import hmac
import itertools
import logging
import mimetypes
import os
import signal
import sys
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from duplex.config import Config, load_config
from duplex.protocol import error_event

from .connection import Connection, Pools

log = logging.getLogger("duplex.server")
WEB_ROOT = Path(__file__).resolve().parent.parent / "clients" / "web"
MAX_MESSAGE = 1 << 20  # 1 MiB: the transport limit (close 1009 above it)


def _web_root() -> Path:
    try:
        from importlib.resources import files

        return Path(str(files("duplex.clients") / "web"))
    except Exception:
        return WEB_ROOT


class DuplexServer:
    """Holds the shared models and serves sessions; usable from tests in-process."""

    def __init__(self, cfg: Config, models):
        self.cfg, self.models = cfg, models
        self.pools = Pools.create(cfg.server.workers)
        self.connections: set[Connection] = set()
        self._ids = itertools.count(1)
        self._server = None
        self.web_root = _web_root()

    # -------------------------------------------------------------- HTTP
    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path == "/ws":
            return None  # WebSocket handshake; the token is checked after it
        if path == "/healthz":
            return connection.respond(HTTPStatus.OK, "ok\n")
        return self._static(path)

    def _static(self, path: str) -> Response:
        name = "index.html" if path in ("", "/") else path.lstrip("/")
        root = self.web_root.resolve()
        target = (root / name).resolve()
        if root not in target.parents or not target.is_file():
            return _response(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
        ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if target.suffix == ".js":
            ctype = "text/javascript"
        return _response(HTTPStatus.OK, target.read_bytes(), ctype)

    def _authorized(self, request: Request) -> bool:
        token = self.cfg.server.token
        if not token:
            return True
        given = parse_qs(urlsplit(request.path).query).get("token", [""])[0]
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            given = given or auth[7:]
        return hmac.compare_digest(given.encode(), token.encode())

    # -------------------------------------------------------------- sockets
    async def handler(self, ws: ServerConnection) -> None:
        if not self._authorized(ws.request):
            await _refuse(ws, "unauthorized", "token rejected", 1008)
            return
        if len(self.connections) >= self.cfg.server.max_sessions:
            await _refuse(ws, "server_full", "server full, try again later", 1013)
            return
        session = self.models.new_session(f"sess_{next(self._ids)}")
        conn = Connection(ws, session, self.models, self.pools, self.cfg.server.queue_size)
        self.connections.add(conn)
        log.info("%s connected from %s", session.id, ws.remote_address)
        try:
            await conn.run()
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("%s crashed; closing it", session.id)
            try:
                await ws.close(1011, "internal error")
            except Exception:
                pass
        finally:
            await conn.close()
            self.connections.discard(conn)
            log.info("%s closed", session.id)

    async def start(self, host: str | None = None, port: int | None = None):
        self._server = await serve(
            self.handler, host or self.cfg.server.host,
            self.cfg.server.port if port is None else port,
            process_request=self.process_request, max_size=MAX_MESSAGE, max_queue=64,
            ping_interval=20, ping_timeout=20, close_timeout=3)
        return self._server

    @property
    def port(self) -> int:
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close(close_connections=True)  # 1001 going away
            await self._server.wait_closed()
        for conn in list(self.connections):
            await conn.close()
        self.pools.shutdown()


def _response(status: HTTPStatus, body: bytes, ctype: str) -> Response:
    headers = Headers([("Content-Type", ctype), ("Content-Length", str(len(body))),
                       ("Cache-Control", "no-store")])
    return Response(status.value, status.phrase, headers, body)


async def _refuse(ws: ServerConnection, code: str, message: str, close_code: int) -> None:
    try:
        await ws.send(__import__("json").dumps(error_event(code, message)))
        await ws.close(close_code, message)
    except ConnectionClosed:
        pass


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="duplex serve", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="default", help="default | test (offline pipeline test)")
    p.add_argument("--config", help="TOML or JSON file with config sections")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one config value, e.g. --set asr.model=small.en")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--token", default=os.environ.get("DUPLEX_TOKEN"),
                   help="require this token from clients (env DUPLEX_TOKEN)")
    p.add_argument("--log-level", default="INFO")
    return p


def config_from_args(args) -> Config:
    cfg = load_config(args.profile, args.config, args.set)
    if args.host:
        cfg.server.host = args.host
    if args.port is not None:
        cfg.server.port = args.port
    if args.token:
        cfg.server.token = args.token
    return cfg


async def serve_forever(cfg: Config, models) -> None:
    server = DuplexServer(cfg, models)
    await server.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"duplex: serving on http://{cfg.server.host}:{server.port}/ "
          f"(socket ws://{cfg.server.host}:{server.port}/ws)", flush=True)
    await stop.wait()
    print("duplex: shutting down", flush=True)
    await server.stop()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = config_from_args(args)
    except (ValueError, OSError) as e:
        print(f"duplex serve: {e}", file=sys.stderr)
        return 2
    from duplex.errors import ModelUnavailable
    from duplex.models.registry import load_models

    if cfg.profile == "test":
        print("duplex: PROFILE test: offline pipeline-test models (pocketsphinx, espeak-ng and a "
              "RANDOM-WEIGHT tiny LLM that babbles). Not for real conversations.", flush=True)
    try:
        models = load_models(cfg)
    except ModelUnavailable as e:
        print(f"duplex serve: {e}", file=sys.stderr)
        return 1
    asyncio.run(serve_forever(cfg, models))
    return 0
