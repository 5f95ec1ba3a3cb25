"""Servers for gateway tests: real uvicorn servers on loopback, in threads of this process."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from distillguard.gateway import Gateway, ReplayCorpus, gateway_app, load_config, replay_app
from tests.conftest import SHARED, install_debian_package, installed_path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerThread:
    """Serve an ASGI app with uvicorn in a thread until the ``with`` block ends."""

    def __init__(self, app: Any, *, lifespan: str = "on") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    lifespan=lifespan, log_level="warning",
                                                    loop="asyncio"))
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
def replay_corpus() -> ReplayCorpus:
    return ReplayCorpus.load(SHARED / "corpora")


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
    return gateway, ServerThread(gateway_app(gateway))


@pytest.fixture
def gateway_factory(replay: ServerThread, tmp_path: Path) -> Iterator[Any]:
    started: list[tuple[ServerThread, httpx.Client]] = []

    def make(config: Any = None, *, upstream: str | None = None, **kwargs: Any) -> RunningGateway:
        gateway, server = start_gateway(config or gateway_config(), upstream or replay.url,
                                        kwargs.pop("log_dir", tmp_path / "log"), **kwargs)
        server.__enter__()
        running = RunningGateway(gateway, server)
        started.append((server, running.client))
        return running

    yield make
    for server, client in started:
        client.close()
        server.__exit__()


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
    found = shutil.which("redis-server")
    if found:
        return found
    install_debian_package("redis-server", "the shared-state tests need redis-server, not on PATH: "
                                           "sudo apt-get install -y redis-server")
    found = shutil.which("redis-server") or installed_path("redis-server", r"/\S+/bin/redis-server")
    if not found:
        pytest.fail("apt-get installed redis-server, but dpkg -L lists no bin/redis-server in it")
    return found


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server of our own on a free loopback port, stopped after the session."""
    binary = _install_redis_server()
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--dir",
                             str(workdir), "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)
