"""Hostile and broken clients: the server rejects them without hanging, crashing or leaking, and
every other session keeps working. After each case a brand-new connection must run SELECT 1."""

import socket
import struct
import subprocess
import time

import psycopg
import pytest

from pgwire_raw import (
    CANCEL_REQUEST,
    GSSENC_REQUEST,
    SSL_REQUEST,
    error_fields,
    handshake,
    message,
    open_socket,
    query,
    read_message,
    read_until_ready,
    startup_packet,
    wait_for_close,
)


@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.1\r\nHost: basin\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(64)),
        b"\x00\x00\x00\x08\x00\x00\x00\x00",  # startup with protocol version 0.0
        b"\x00\x00\x00\x02",  # length smaller than the length field itself
        bytes(range(256)) * 4,
    ],
    ids=["http", "tls-client-hello", "protocol-0", "tiny-length", "binary-noise"],
)
def test_garbage_before_startup_is_rejected(basin, assert_healthy, garbage):
    with open_socket(basin) as sock:
        sock.sendall(garbage)
        wait_for_close(sock)
    assert_healthy()


def test_oversized_startup_length(basin, assert_healthy):
    with open_socket(basin) as sock:
        # Claims a 2 GiB startup packet; the server must refuse, not wait for or allocate it.
        sock.sendall(struct.pack("!II", 0x7FFFFFFF, 196608) + b"user\0basin\0")
        wait_for_close(sock)
    assert_healthy()


def test_oversized_message_after_startup(basin, assert_healthy):
    with open_socket(basin) as sock:
        handshake(sock)
        sock.sendall(b"Q" + struct.pack("!I", 0x7FFFFFFF) + b"SELECT 1")
        messages = wait_for_close(sock)
    errors = [error_fields(payload) for kind, payload in messages if kind == b"E"]
    assert all(e.get("C", "").startswith("08") or e.get("C") == "54000" for e in errors), errors
    assert_healthy()


def test_describe_with_length_zero(basin, assert_healthy):
    with open_socket(basin) as sock:
        handshake(sock)
        sock.sendall(b"D\x00\x00\x00\x00")
        wait_for_close(sock)
    assert_healthy()


def test_message_length_below_four(basin, assert_healthy):
    with open_socket(basin) as sock:
        handshake(sock)
        sock.sendall(b"Q\x00\x00\x00\x03")
        wait_for_close(sock)
    assert_healthy()


def test_unknown_message_type(basin, assert_healthy):
    with open_socket(basin) as sock:
        handshake(sock)
        sock.sendall(message(b"!", b"\x01\x02"))
        messages = wait_for_close(sock)
    assert any(kind == b"E" for kind, _ in messages), messages
    assert_healthy()


def test_unsupported_protocol_version(basin, assert_healthy):
    with open_socket(basin) as sock:
        # Protocol 2.0: refused (PostgreSQL answers with a 2.0-style error, which has no length
        # field, so only the closing is checked).
        sock.sendall(startup_packet(version=2 << 16))
        wait_for_close(sock)
    assert_healthy()


@pytest.mark.parametrize("request_code", [SSL_REQUEST, GSSENC_REQUEST], ids=["ssl", "gssenc"])
def test_encryption_requests_are_declined_then_startup_works(basin, assert_healthy, request_code):
    # Basin serves neither TLS nor GSSAPI on loopback trust: it answers N and the client goes on
    # with a plain startup on the same socket, as libpq does with sslmode/gssencmode=prefer.
    with open_socket(basin) as sock:
        sock.sendall(struct.pack("!II", 8, request_code))
        assert sock.recv(1) == b"N"
        handshake(sock)
        sock.sendall(query("SELECT 1"))
        kinds = [kind for kind, _ in read_until_ready(sock)]
        assert kinds == [b"T", b"D", b"C", b"Z"], kinds
    assert_healthy()


def test_cancel_request_with_unknown_key(basin, assert_healthy):
    with open_socket(basin) as sock:
        sock.sendall(struct.pack("!IIII", 16, CANCEL_REQUEST, 12345, 67890))
        wait_for_close(sock)
    assert_healthy()


def test_terminate_closes_cleanly(basin, assert_healthy):
    with open_socket(basin) as sock:
        handshake(sock)
        sock.sendall(message(b"X"))
        assert wait_for_close(sock) == []
    assert_healthy()


def test_wrong_parameter_count_in_bind_raw(basin, assert_healthy):
    with open_socket(basin) as sock:
        handshake(sock)
        parse = message(b"P", b"s\0SELECT $1::int + $2::int\0" + struct.pack("!H", 0))
        bind = message(b"B", b"\0s\0" + struct.pack("!HH", 0, 1) + struct.pack("!I", 1) + b"1" + struct.pack("!H", 0))
        execute = message(b"E", b"\0" + struct.pack("!I", 0))
        sock.sendall(parse + bind + execute + message(b"S"))
        messages = read_until_ready(sock)
        kinds = [kind for kind, _ in messages]
        assert kinds[0] == b"1", kinds  # ParseComplete
        errors = [error_fields(payload) for kind, payload in messages if kind == b"E"]
        assert len(errors) == 1 and errors[0]["C"] == "08P01", errors
        # Same session, right parameter count.
        bind = message(
            b"B",
            b"\0s\0" + struct.pack("!HH", 0, 2) + struct.pack("!I", 1) + b"1" + struct.pack("!I", 1) + b"2"
            + struct.pack("!H", 0),
        )
        sock.sendall(bind + execute + message(b"S"))
        messages = read_until_ready(sock)
        rows = [payload for kind, payload in messages if kind == b"D"]
        assert rows == [struct.pack("!HI", 1, 1) + b"3"], messages
    assert_healthy()


def test_client_vanishes_mid_result(basin, assert_healthy):
    for _ in range(3):
        with open_socket(basin) as sock:
            handshake(sock)
            sock.sendall(query("SELECT g.n FROM generate_series(1, 10000000) AS g(n)"))
            received = 0
            while received < 256 * 1024:
                msg = read_message(sock)
                assert msg is not None and msg[0] != b"E", msg
                received += len(msg[1]) + 5
            # Vanish: RST instead of Terminate, with most of the result unsent.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    started = time.monotonic()
    assert_healthy()
    assert time.monotonic() - started < 10, "server slow to answer after abandoned queries"


def test_many_short_connections(basin, assert_healthy):
    for _ in range(50):
        with psycopg.connect(basin.dsn, autocommit=True) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    open_sockets = [open_socket(basin) for _ in range(20)]
    for sock in open_sockets:
        handshake(sock)
    for sock in open_sockets:
        sock.close()
    assert_healthy()


def test_psql(basin, assert_healthy):
    def psql(sql: str) -> str:
        result = subprocess.run(
            ["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", basin.host, "-p", str(basin.port),
             "-U", "basin", "-d", "basin", "-c", sql],
            capture_output=True, text=True, timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert psql("SELECT 1") == "1"
    assert psql("SELECT version()").startswith("PostgreSQL ")
    assert_healthy()


@pytest.mark.parametrize(
    "frame",
    [
        b"D\x00\x00\x00\x04",  # Describe with no target byte
        b"C\x00\x00\x00\x04",  # Close with no target byte
        b"B\x00\x00\x00\x0a\x00\x00\xff\xff\xff\xff\x00\x00",  # Bind whose body is too short
    ],
    ids=["describe-empty", "close-empty", "bind-short"],
)
def test_malformed_body_gets_protocol_violation(basin, assert_healthy, frame):
    with open_socket(basin) as sock:
        handshake(sock)
        sock.sendall(frame)
        messages = wait_for_close(sock)
    errors = [error_fields(payload) for kind, payload in messages if kind == b"E"]
    assert [e.get("C") for e in errors] == ["08P01"], messages
    assert_healthy()


def test_ssl_request_with_wrong_length_is_rejected(basin, assert_healthy):
    with open_socket(basin) as sock:
        sock.sendall(struct.pack("!II", 10_000, 80877103) + b"\x00" * 64)
        wait_for_close(sock)
    assert_healthy()
