"""Servers for gateway tests: real uvicorn servers on loopback, in threads of this process."""

from __future__ import annotations

import select
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import orjson
import pytest
import uvicorn

from distillguard.gateway import Gateway, admin_app, gateway_app, load_config
from distillguard.gateway.server import uvicorn_config
from distillguard.replay import ReplayCorpus, replay_app
from tests.conftest import installed_program


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerThread:
    """Serve an ASGI app with uvicorn in a thread until the ``with`` block ends.

    With ``gateway``, a gateway config: served as ``distillguard gateway`` serves it
    (its HTTP protocol and uvicorn settings, on uvloop).
    """

    def __init__(self, app: Any, *, lifespan: str = "on", gateway: Any = None,
                 **tls: str) -> None:
        self.port = free_port()
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        if gateway is not None:
            config = uvicorn_config(app, "127.0.0.1", self.port, gateway, lifespan=lifespan)
        else:  # ``tls``: uvicorn's ssl_keyfile and ssl_certfile
            config = uvicorn.Config(app, host="127.0.0.1", port=self.port, lifespan=lifespan,
                                    log_level="warning", loop="asyncio", **tls)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="session")
def replay_corpus(shared_corpora: Path) -> ReplayCorpus:
    return ReplayCorpus.load(shared_corpora)


@pytest.fixture(scope="session")
def replay(replay_corpus: ReplayCorpus) -> Iterator[ServerThread]:
    with ServerThread(replay_app(replay_corpus), lifespan="off") as server:
        yield server


KEYS = {
    "sk-alice": {"account_id": "acct-alice", "org_id": "org-a", "tier": "pro", "verified": True},
    "sk-bob": {"account_id": "acct-bob", "org_id": "org-b", "tier": "free", "verified": False},
    "sk-carol": {"account_id": "acct-carol", "tier": "edu", "verified": False},
    "sk-dave": {"account_id": "acct-dave", "org_id": "org-a", "tier": "team", "verified": True},
}


def gateway_config(**overrides: Any) -> Any:
    """The packaged config with the test key table, inline scoring every 10 ms."""
    base: dict[str, Any] = {"identity": {"keys": KEYS, "unknown_keys": "derive"},
                            "scoring": {"worker": "inline", "batch_interval_ms": 10}}
    for key, value in overrides.items():
        base[key] = {**base[key], **value} if isinstance(value, dict) and key in base else value
    return load_config(overrides=base)


class RunningGateway:
    def __init__(self, gateway: Gateway, server: ServerThread) -> None:
        self.gateway = gateway
        self.server = server
        self.url = server.url
        self.client = httpx.Client(base_url=server.url, timeout=30)
        self.admin: ServerThread | None = None

    def metrics(self) -> str:
        """``/metrics`` from the gateway's admin app (started on first use)."""
        if self.admin is None:
            self.admin = ServerThread(admin_app(self.gateway), lifespan="off",
                                      gateway=self.gateway.config).__enter__()
        r = httpx.get(self.admin.url + "/metrics")
        assert r.status_code == 200, r.text
        return r.text

    def close(self) -> None:
        self.client.close()
        if self.admin is not None:
            self.admin.__exit__()
        self.server.__exit__()

    def chat(self, key: str, content: str, **body: Any) -> httpx.Response:
        payload = {"model": "model-b1", "messages": [{"role": "user", "content": content}], **body}
        return self.client.post("/v1/chat/completions", json=payload,
                                headers={"authorization": f"Bearer {key}"})

    def messages(self, key: str, content: str, **body: Any) -> httpx.Response:
        payload = {"model": "model-b1", "max_tokens": 256,
                   "messages": [{"role": "user", "content": content}], **body}
        return self.client.post("/v1/messages", json=payload, headers={"x-api-key": key})

    def flush(self) -> None:
        """Wait until every finished request is scored and written to the log."""
        deadline = time.monotonic() + 10
        while self.gateway.scorer.pending and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)
        if self.gateway.log is not None:
            self.gateway.log.flush()


def start_gateway(config: Any, upstream: str, log_dir: Path | None, **kwargs: Any
                  ) -> tuple[Gateway, ServerThread]:
    gateway = Gateway(config, upstream_url=upstream, log_dir=log_dir, **kwargs)
    return gateway, ServerThread(gateway_app(gateway), gateway=config)


@pytest.fixture
def gateway_factory(replay: ServerThread, tmp_path: Path) -> Iterator[Any]:
    started: list[RunningGateway] = []

    def make(config: Any = None, *, upstream: str | None = None, **kwargs: Any) -> RunningGateway:
        gateway, server = start_gateway(config or gateway_config(), upstream or replay.url,
                                        kwargs.pop("log_dir", tmp_path / "log"), **kwargs)
        server.__enter__()
        running = RunningGateway(gateway, server)
        started.append(running)
        return running

    yield make
    for running in started:
        running.close()


class RawResponse(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes
    sent: int  # bytes of the request sent before the server answered or closed

    def json(self) -> Any:
        return orjson.loads(self.body)


def raw_exchange(port: int, data: bytes | Iterable[bytes], *, timeout: float = 30
                 ) -> RawResponse:
    """Send ``data`` (bytes, or chunks) on one raw connection and read the first response.

    Sending stops as soon as the server answers or closes: what matters for an
    attack is how much the server read before it refused.
    """
    return raw_exchanges(port, data, 1, timeout=timeout)[0]


def raw_exchanges(port: int, data: bytes | Iterable[bytes], count: int, *,
                  timeout: float = 30) -> list[RawResponse]:
    """``raw_exchange`` reading ``count`` responses (fewer if the server closes first);
    responses must carry a Content-Length."""
    chunks = [data] if isinstance(data, bytes) else data
    sent = 0
    received = bytearray()
    responses: list[RawResponse] = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            for chunk in chunks:
                if select.select([sock], [], [], 0)[0]:
                    break
                sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        while len(responses) < count:
            parsed = _parse_response(received, sent)
            if parsed is not None:
                responses.append(parsed[0])
                del received[:parsed[1]]
                continue
            try:
                piece = sock.recv(65536)
            except ConnectionResetError:
                piece = b""
            if not piece:
                break
            received += piece
    if not responses:
        raise AssertionError(f"no HTTP response after {sent} bytes sent: {bytes(received)[:200]!r}")
    return responses


def _parse_response(data: bytearray, sent: int) -> tuple[RawResponse, int] | None:
    """The first whole response in ``data`` and its length in bytes, or None."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = bytes(data[:end]).decode("latin-1").split("\r\n")
    if not lines[0].startswith("HTTP/1.1 "):
        raise AssertionError(f"not an HTTP response: {bytes(data)[:200]!r}")
    headers = {name.lower(): value for name, value in (
        line.split(": ", 1) for line in lines[1:] if ": " in line)}
    length = int(headers.get("content-length", 0))
    if len(data) < end + 4 + length:
        return None
    body = bytes(data[end + 4:end + 4 + length])
    return RawResponse(int(lines[0].split()[1]), headers, body, sent), end + 4 + length


def read_log(log_dir: Path) -> tuple[list[dict[str, Any]], list[Any]]:
    """Every record of the gateway's log through the batch reader, and what it quarantined."""
    from distillguard.logs import read_exchanges

    rows, quarantined = [], []
    for chunk in read_exchanges([log_dir]):
        rows += chunk.batch.to_pylist()
        quarantined += chunk.quarantined
    return rows, quarantined


def _install_redis_server() -> str:
    """Debian's redis-server, installed on first use (CI machines start without it)."""
    return installed_program("redis-server", "redis-server",
                             "the shared-state tests need redis-server, not on PATH: "
                             "sudo apt-get install -y redis-server")


class RedisServer:
    """A redis-server of our own on a free loopback port (``with``: started and stopped)."""

    def __init__(self, workdir: Path) -> None:
        self.binary = _install_redis_server()
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> RedisServer:
        self.proc = subprocess.Popen([self.binary, "--port", str(self.port), "--bind",
                                      "127.0.0.1", "--dir", str(self.workdir), "--save", "",
                                      "--appendonly", "no"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.__exit__()
                pytest.fail("redis-server did not start")
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)  # a frozen server cannot act on SIGTERM
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One redis-server for the session's tests."""
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server.url
