"""When extended-query replies reach the client, checked against real PostgreSQL: replies wait for
Sync or Flush (so a Bind/Describe/Execute/Sync round trip is one packet) and errors are sent at
once. Each test runs once against PostgreSQL and once against Basin (the `server` fixture).
(Basin also flushes the rows sent so far whenever a query waits for more, for SUBSCRIBE; that
is covered in test_materialized_views.py.)"""

import socket
import struct

from pgwire_raw import error_fields, handshake, message, open_socket, read_message, read_until_ready


def parse(name: bytes, sql: str) -> bytes:
    return message(b"P", name + b"\0" + sql.encode() + b"\0" + struct.pack("!H", 0))


def bind(statement: bytes, params: list[bytes] = ()) -> bytes:
    body = b"\0" + statement + b"\0" + struct.pack("!HH", 0, len(params))
    for value in params:
        body += struct.pack("!I", len(value)) + value
    return message(b"B", body + struct.pack("!H", 0))


DESCRIBE_PORTAL = message(b"D", b"P\0")
EXECUTE = message(b"E", b"\0" + struct.pack("!I", 0))
SYNC = message(b"S")
FLUSH = message(b"H")


def nothing_arrives(sock: socket.socket, seconds: float = 0.3) -> bool:
    sock.settimeout(seconds)
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except (socket.timeout, BlockingIOError):
        return True
    finally:
        sock.settimeout(10.0)


def kinds(messages) -> list[bytes]:
    return [kind for kind, _ in messages]


def test_replies_wait_for_sync(server):
    with open_socket(server) as sock:
        handshake(sock)
        sock.sendall(parse(b"s", "SELECT $1::int + 1") + bind(b"s", [b"41"]) + DESCRIBE_PORTAL + EXECUTE)
        assert nothing_arrives(sock), "a reply was sent before Sync or Flush"
        sock.sendall(SYNC)
        messages = read_until_ready(sock)
        assert kinds(messages) == [b"1", b"2", b"T", b"D", b"C", b"Z"], messages
        assert messages[3][1] == struct.pack("!HI", 1, 2) + b"42"
        # The prepared statement again, as pgbench -M prepared sends it.
        sock.sendall(bind(b"s", [b"1"]) + DESCRIBE_PORTAL + EXECUTE + SYNC)
        messages = read_until_ready(sock)
        assert kinds(messages) == [b"2", b"T", b"D", b"C", b"Z"], messages
        assert messages[2][1] == struct.pack("!HI", 1, 1) + b"2"


def test_flush_sends_what_waits(server):
    with open_socket(server) as sock:
        handshake(sock)
        sock.sendall(parse(b"f", "SELECT 7") + FLUSH)
        assert read_message(sock)[0] == b"1"
        sock.sendall(bind(b"f") + EXECUTE + FLUSH)
        assert [read_message(sock)[0] for _ in range(3)] == [b"2", b"D", b"C"]
        sock.sendall(SYNC)
        assert kinds(read_until_ready(sock)) == [b"Z"]


def test_an_error_is_sent_without_waiting_for_sync(server):
    with open_socket(server) as sock:
        handshake(sock)
        sock.sendall(parse(b"", "SELECT 1") + parse(b"bad", "SELEC nonsense"))
        first, second = read_message(sock), read_message(sock)
        assert first[0] == b"1", first
        assert second[0] == b"E" and error_fields(second[1])["C"] == "42601", second
        # Everything up to Sync is skipped; then the session works.
        sock.sendall(bind(b"") + EXECUTE + SYNC)
        assert kinds(read_until_ready(sock)) == [b"Z"]
        sock.sendall(bind(b"") + EXECUTE + SYNC)
        messages = read_until_ready(sock)
        assert kinds(messages) == [b"2", b"D", b"C", b"Z"], messages

