"""An upstream that does not speak HTTP properly: the gateway's own upstream client
bounds what it reads, answers the client in the API's error format, and never hands
one answer's bytes to another request."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
import pytest

from tests.gateway.conftest import gateway_config, read_log

_ANSWER = orjson.dumps({"id": "c1", "object": "chat.completion", "model": "model-b1",
                        "choices": [{"index": 0, "message": {"role": "assistant",
                                                             "content": "first"},
                                     "finish_reason": "stop"}]})


def _read_request(conn: socket.socket) -> bool:
    """Read one request (head and Content-Length body); False when the client closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = conn.recv(65536)
        if not piece:
            return False
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        piece = conn.recv(65536)
        if not piece:
            return False
        body += piece
    return True


@contextmanager
def raw_upstream(answers: list[list[bytes]], *, close: bool = True) -> Iterator[dict]:
    """A TCP server answering the n-th request it reads with ``answers[n]`` (pieces sent
    as they are; the last answer is repeated), then closing the connection unless
    ``close`` is False. Yields a dict with its ``url`` and the ``connections`` it took."""
    server = socket.create_server(("127.0.0.1", 0))
    state = {"url": f"http://127.0.0.1:{server.getsockname()[1]}", "connections": 0,
             "requests": 0}
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            try:
                while _read_request(conn):
                    answer = answers[min(state["requests"], len(answers) - 1)]
                    state["requests"] += 1
                    for piece in answer:
                        conn.sendall(piece)
                    if close:
                        return
            except OSError:
                return

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            state["connections"] += 1
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        stop.set()
        thread.join(5)
        server.close()


def _ok(body: bytes, extra: bytes = b"") -> bytes:
    return (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body + extra)


def _assert_502(r, code: str) -> None:
    assert r.status_code == 502, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == code


@pytest.mark.parametrize(("answer", "code", "logged"), [
    ([b"SSH-2.0-OpenSSH_9.6\r\n\r\n"], "upstream_malformed", "not HTTP"),
    ([b"HTTP/1.1 200 OK\r\nx-junk: ", b"a" * 300_000], "upstream_malformed", "head is longer"),
    ([b"HTTP/1.1 100 Continue\r\n\r\n" * 5000], "upstream_malformed", "head is longer"),
    ([b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n"], "upstream_malformed",
     "not HTTP"),
    ([b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n"],
     "upstream_malformed", "switched protocols"),
    ([b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 9000\r\n\r\n",
      b"{" + b" " * 8998 + b"}"], "upstream_malformed", "longer than 4096 bytes"),
    ([b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{\"id"],
     "upstream_unreachable", "dropped the connection"),
    ([b"HTTP/1.1 999 Whatever\r\ncontent-length: 2\r\n\r\n{}"], "upstream_malformed",
     "status 999"),
])
def test_a_malformed_answer_is_502_in_the_apis_format_and_logged(gateway_factory, tmp_path,
                                                                 answer, code, logged):
    config = gateway_config(upstream={"max_answer_bytes": 4096})
    with raw_upstream([answer]) as upstream:
        gw = gateway_factory(config, upstream=upstream["url"])
        _assert_502(gw.chat("sk-alice", "hi"), code)
        gw.flush()
        (row,), _ = read_log(tmp_path / "log")
    error = orjson.loads(row["extra"])["error"]
    assert row["status"] == 502 and error.startswith(code + ":") and logged in error, error


def test_an_answer_the_upstream_was_not_asked_for_reaches_nobody(gateway_factory, tmp_path):
    """A second answer glued behind the first (response smuggling) is never read as the
    next request's answer: the connection it came on is closed, not reused."""
    smuggled = orjson.dumps({"id": "evil", "choices": [{"message": {"role": "assistant",
                                                                    "content": "smuggled"}}]})
    with raw_upstream([[_ok(_ANSWER, _ok(smuggled))], [_ok(_ANSWER)]], close=False) as upstream:
        gw = gateway_factory(upstream=upstream["url"])
        first = gw.chat("sk-alice", "one")
        time.sleep(0.2)
        second = gw.chat("sk-alice", "two")
        assert upstream["connections"] == 2
    assert first.status_code == second.status_code == 200
    assert first.json()["id"] == second.json()["id"] == "c1"


def test_a_kept_alive_connection_is_reused_when_the_upstream_behaves(gateway_factory):
    with raw_upstream([[_ok(_ANSWER)]], close=False) as upstream:
        gw = gateway_factory(upstream=upstream["url"])
        assert [gw.chat("sk-alice", f"q{i}").status_code for i in range(3)] == [200] * 3
        assert upstream["connections"] == 1


def test_a_stream_event_that_never_ends_is_cut_at_the_limit(gateway_factory, tmp_path):
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n"
    config = gateway_config(upstream={"max_answer_bytes": 4096})
    with raw_upstream([[head, b"data: {\"x\": \"" + b"a" * 3000, b"a" * 3000]]) as upstream:
        gw = gateway_factory(config, upstream=upstream["url"])
        r = gw.chat("sk-alice", "hi", stream=True)
        gw.flush()
        (row,), _ = read_log(tmp_path / "log")
    _assert_502(r, "upstream_malformed")
    assert "an event is longer than 4096 bytes" in orjson.loads(row["extra"])["error"]


def test_the_gateways_own_key_replaces_the_callers_credential() -> None:
    """With an upstream key, each API gets it in its own header; without, the caller's
    credential is passed on."""
    from distillguard.gateway.upstream import UpstreamClient

    caller = ("authorization", "Bearer sk-caller")
    own = UpstreamClient("http://up.example:8000", api_key="sk-gw")
    openai = own._head("/v1/chat/completions", "openai", {}, caller, 2)
    anthropic = own._head("/v1/messages", "anthropic", {}, ("x-api-key", "sk-caller"), 2)
    assert b"authorization: Bearer sk-gw\r\n" in openai and b"sk-caller" not in openai
    assert b"x-api-key: sk-gw\r\n" in anthropic and b"sk-caller" not in anthropic
    forwarded = UpstreamClient("http://up.example:8000")._head("/v1/chat/completions", "openai",
                                                               {}, caller, 2)
    assert b"authorization: Bearer sk-caller\r\n" in forwarded
