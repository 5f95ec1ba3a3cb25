"""HTTP-level attacks on the real gateway over raw sockets: oversized and overcrowded
headers, and framing errors; and the JSON error format of every refusal the router and
the HTTP layer make themselves (404, 405, 400, 431)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.gateway.conftest import gateway_config, raw_exchange, raw_exchanges

OPENAI = "/v1/chat/completions"
ANTHROPIC = "/v1/messages"
BODY = b'{"model": "model-b1", "max_tokens": 9, "messages": [{"role": "user", "content": "hi"}]}'


def _request(path: str, headers: bytes = b"", body: bytes = BODY) -> bytes:
    return (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer sk-alice"
            b"\r\nContent-Type: application/json\r\n" + headers
            + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def _huge_header(path: str, total: int, chunk: int = 1 << 16) -> Iterator[bytes]:
    yield b"POST " + path.encode() + b" HTTP/1.1\r\nHost: gw\r\nX-Big: "
    for _ in range(total // chunk):
        yield b"a" * chunk
    yield b"\r\n\r\n"


def _assert_openai_error(response, status: int) -> dict:
    assert response.status == status, response
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    return error


def _assert_anthropic_error(response, status: int, kind: str) -> None:
    assert response.status == status, response
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == kind and body["error"]["message"]


# --- 5. header size and count are capped before the headers are parsed ------------------

@pytest.mark.parametrize("path", [OPENAI, ANTHROPIC])
def test_a_huge_header_is_refused_431_long_before_it_ends(gateway_factory, path):
    gw = gateway_factory()
    total = 64 << 20
    response = raw_exchange(gw.server.port, _huge_header(path, total))
    if path == OPENAI:
        assert _assert_openai_error(response, 431)["code"] == "request_header_fields_too_large"
    else:
        _assert_anthropic_error(response, 431, "invalid_request_error")
    # refused once past the limit (64 KiB), not after reading the whole 64 MiB
    assert response.sent < total // 4
    assert gw.chat("sk-alice", "still serving").status_code == 200


def test_too_many_headers_are_refused_431(gateway_factory):
    gw = gateway_factory(gateway_config(max_header_count=50))
    many = b"".join(b"X-H%d: 1\r\n" % i for i in range(60))
    error = _assert_openai_error(raw_exchange(gw.server.port, _request(OPENAI, many)), 431)
    assert "50" in error["message"]
    few = b"".join(b"X-H%d: 1\r\n" % i for i in range(30))
    assert raw_exchange(gw.server.port, _request(OPENAI, few)).status == 200


def test_headers_under_the_limits_pass(gateway_factory):
    gw = gateway_factory(gateway_config(max_header_bytes=65536))
    cookie = b"Cookie: " + b"c" * 40_000 + b"\r\n"
    assert raw_exchange(gw.server.port, _request(OPENAI, cookie)).status == 200
    big = b"Cookie: " + b"c" * 70_000 + b"\r\n"
    _assert_openai_error(raw_exchange(gw.server.port, _request(OPENAI, big)), 431)


def test_header_limits_hold_on_a_kept_alive_connection(gateway_factory):
    """The second request on a connection is counted from its own first byte."""
    gw = gateway_factory(gateway_config(max_header_bytes=4096))
    half = b"X-Pad: " + b"p" * 3000 + b"\r\n"
    both = raw_exchanges(gw.server.port, _request(OPENAI, half) + _request(OPENAI, half), 2)
    assert [r.status for r in both] == [200, 200]
    both = raw_exchanges(gw.server.port, _request(OPENAI, half) + _request(OPENAI, half * 2), 2)
    assert [r.status for r in both] == [200, 431]


# --- 8. the router's and the HTTP layer's refusals in the API's JSON format --------------

def test_unknown_paths_and_methods_answer_in_the_apis_format(gateway_factory):
    gw = gateway_factory()
    r = gw.client.post("/v1/embeddings", json={})
    assert r.status_code == 404 and r.json()["error"]["type"] == "invalid_request_error"
    assert "/v1/embeddings" in r.json()["error"]["message"]
    r = gw.client.get(OPENAI)
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    assert r.headers["allow"] == "POST"
    r = gw.client.get(ANTHROPIC)
    assert r.status_code == 405 and r.json()["type"] == "error"
    assert r.json()["error"]["type"] == "invalid_request_error"
    r = gw.client.post("/v1/messages/count_tokens", json={})
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"


@pytest.mark.parametrize(("path", "head"), [
    (OPENAI, b"Content-Length: 5\r\nContent-Length: 7\r\n\r\nhello"),
    (ANTHROPIC, b"Content-Length: 5\r\nContent-Length: 7\r\n\r\nhello"),
    (OPENAI, b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"),
    (ANTHROPIC, b"Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n"),
])
def test_framing_errors_answer_400_in_the_apis_format(gateway_factory, path, head):
    gw = gateway_factory()
    data = b"POST " + path.encode() + b" HTTP/1.1\r\nHost: gw\r\n" + head
    response = raw_exchange(gw.server.port, data)
    if path == OPENAI:
        assert _assert_openai_error(response, 400)["code"] == "invalid_http_request"
    else:
        _assert_anthropic_error(response, 400, "invalid_request_error")
    assert response.headers["connection"] == "close"


def test_a_request_line_that_is_not_http_answers_in_openai_format(gateway_factory):
    gw = gateway_factory()
    _assert_openai_error(raw_exchange(gw.server.port, b"HELLO THERE\r\n\r\n"), 400)


def test_a_framing_error_after_a_pipelined_request_is_answered_after_it(gateway_factory):
    gw = gateway_factory()
    broken = (b"POST " + ANTHROPIC.encode() + b" HTTP/1.1\r\nHost: gw\r\n"
              b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")
    first, second = raw_exchanges(gw.server.port, _request(OPENAI) + broken, 2)
    assert first.status == 200 and first.json()["object"] == "chat.completion"
    _assert_anthropic_error(second, 400, "invalid_request_error")


@pytest.mark.parametrize("path", [OPENAI, ANTHROPIC])
def test_an_unexpected_failure_is_a_500_in_the_apis_format(gateway_factory, path):
    gw = gateway_factory()

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    gw.gateway.decide = broken
    body = {"model": "model-b1", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    r = gw.client.post(path, json=body, headers={"x-api-key": "sk-alice"})
    assert r.status_code == 500
    if path == OPENAI:
        assert r.json()["error"]["code"] == "internal_error"
    else:
        assert r.json()["type"] == "error" and r.json()["error"]["type"] == "api_error"
    del gw.gateway.decide  # mended: the next request (on a new connection) is served
    assert httpx.post(gw.url + path, json=body, headers={"x-api-key": "sk-alice"}
                      ).status_code == 200


def test_a_response_head_leaves_with_its_body_and_never_waits_alone():
    import asyncio

    from distillguard.gateway.http_protocol import _OneWrite

    class Transport:
        def __init__(self) -> None:
            self.writes: list[bytes] = []

        def write(self, data: bytes) -> None:
            self.writes.append(data)

        def is_closing(self) -> bool:
            return False

    async def run() -> tuple[list[bytes], list[bytes], list[bytes]]:
        loop = asyncio.get_running_loop()
        whole, alone = Transport(), Transport()
        writer = _OneWrite(whole, loop)
        writer.write(b"HEAD")
        writer.write(b"body-1")
        writer.write(b"body-2")
        _OneWrite(alone, loop).write(b"HEAD")
        before = list(alone.writes)
        await asyncio.sleep(0)  # the end of the loop's turn
        return whole.writes, before, alone.writes

    whole, before, alone = asyncio.run(run())
    assert whole == [b"HEADbody-1", b"body-2"]
    assert before == [] and alone == [b"HEAD"]
