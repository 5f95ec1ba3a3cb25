"""What the gateway asks Redis, counted command by command by a proxy in front of a real
redis-server: one limiter call per request when a limit applies, none when none does;
windows read at most once per account per refresh; counters written per batch."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from distillguard.gateway.resp import _Incomplete, _parse
from tests.gateway.conftest import gateway_config

COT = "Think step by step and write out your full reasoning before answering: what is 17 * 23?"
REQUESTS = 12


@contextmanager
def counting_proxy(redis_url: str) -> Iterator[tuple[str, list[list[str]]]]:
    """A TCP proxy to ``redis_url`` that records every command the clients send (as lists
    of words, in the order they arrive); yields its own URL and that list."""
    host, port = redis_url.split("//", 1)[1].split("/", 1)[0].split(":")
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    commands: list[list[str]] = []
    stop = threading.Event()

    def upstream_to_client(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            dst.close()

    def serve(client: socket.socket) -> None:
        redis = socket.create_connection((host, int(port)))
        threading.Thread(target=upstream_to_client, args=(redis, client), daemon=True).start()
        buf, pos = bytearray(), 0
        try:
            while data := client.recv(65536):
                buf += data
                while True:
                    try:
                        command, pos = _parse(buf, pos)
                    except _Incomplete:
                        break
                    commands.append([str(word) for word in command])
                redis.sendall(data)
        except OSError:
            pass
        finally:
            redis.close()

    def accept() -> None:
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=serve, args=(client,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"redis://127.0.0.1:{server.getsockname()[1]}/0", commands
    finally:
        stop.set()
        thread.join(5)
        server.close()


def _run(gateway_factory, redis_url: str, config) -> list[list[str]]:
    """``REQUESTS`` requests one after the other from one account; the commands sent."""
    from distillguard.gateway.server import state_store

    with counting_proxy(redis_url) as (url, commands):
        gw = gateway_factory(config, state=state_store(url, config), log_dir=None)
        started = len(commands)
        for i in range(REQUESTS):
            assert gw.chat("sk-carol", f"{COT} ({i})").status_code == 200
        gw.flush()
        gw.close()
        return commands[started:]


def _kinds(commands: list[list[str]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for command in commands:
        kind = command[0].upper()
        if kind == "EVALSHA":
            kind += " " + command[3 + int(command[2])]  # take or charge
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def test_no_limit_no_round_trip_per_request(gateway_factory, redis_url):
    """The packaged rules read the account's window (velocity, shares), so it is read, once
    per refresh period and in the background; no request waits on Redis."""
    config = gateway_config(window={"refresh_seconds": 600})
    kinds = _kinds(_run(gateway_factory, redis_url, config))
    assert not any(kind.startswith("EVALSHA") for kind in kinds), kinds
    hours = config.window_hours
    # one pipeline for the one account's window: an hash per hour and two minutes
    assert kinds.get("HGETALL") == hours and kinds.get("GET") == 2, kinds
    # counters: written per scored batch, never more often than requests came
    assert 1 <= kinds.get("INCRBY", 0) <= REQUESTS, kinds
    assert set(kinds) <= {"HGETALL", "GET", "HINCRBY", "INCRBY", "EXPIRE"}, kinds


def test_a_limit_is_one_limiter_call_per_request(gateway_factory, redis_url):
    config = gateway_config(limits={"account": {"requests_per_minute": 10_000,
                                                "tokens_per_minute": 10_000_000}},
                            window={"refresh_seconds": 600})
    kinds = _kinds(_run(gateway_factory, redis_url, config))
    assert kinds.get("EVALSHA take") == REQUESTS, kinds
    # tokens used beyond the admission estimate: settled together every 100 ms, not per
    # request (requests here come one at a time, so at most one settlement each)
    assert kinds.get("EVALSHA charge", 0) <= REQUESTS, kinds
    assert set(kinds) <= {"EVALSHA take", "EVALSHA charge", "HGETALL", "GET", "HINCRBY",
                          "INCRBY", "EXPIRE"}, kinds


def test_no_rule_reading_the_window_and_no_limit_no_read_at_all(gateway_factory, redis_url):
    config = gateway_config(rules=[{"name": "watchlist-extraction", "action": "block",
                                    "when": {"verdict": ["extraction"]}}])
    kinds = _kinds(_run(gateway_factory, redis_url, config))
    assert set(kinds) <= {"HINCRBY", "INCRBY", "EXPIRE"}, kinds
