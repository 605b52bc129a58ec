"""A minimal Postgres wire-protocol client over raw sockets, for sending what real drivers never
send (garbage, bad lengths, truncated messages)."""

from __future__ import annotations

import socket
import struct
import time

PROTOCOL_3_0 = 196608
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102


def open_socket(basin, timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection((basin.host, basin.port), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def startup_packet(user: str = "basin", database: str = "basin", version: int = PROTOCOL_3_0) -> bytes:
    params = b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in (("user", user), ("database", database)))
    body = struct.pack("!I", version) + params + b"\0"
    return struct.pack("!I", len(body) + 4) + body


def message(kind: bytes, payload: bytes = b"") -> bytes:
    return kind + struct.pack("!I", len(payload) + 4) + payload


def query(sql: str) -> bytes:
    return message(b"Q", sql.encode() + b"\0")


def recv_exact(sock: socket.socket, size: int) -> bytes | None:
    """`size` bytes, or None if the server closed the connection first."""
    chunks = []
    while size > 0:
        chunk = sock.recv(size)
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def read_message(sock: socket.socket) -> tuple[bytes, bytes] | None:
    header = recv_exact(sock, 5)
    if header is None:
        return None
    kind, length = header[:1], struct.unpack("!I", header[1:])[0]
    assert length >= 4, f"server sent message {kind!r} with length {length}"
    payload = recv_exact(sock, length - 4)
    if payload is None:
        return None
    return kind, payload


def error_fields(payload: bytes) -> dict[str, str]:
    fields = {}
    for part in payload.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode(errors="replace")
    return fields


def handshake(sock: socket.socket) -> None:
    """Startup until ReadyForQuery (trust authentication)."""
    sock.sendall(startup_packet())
    read_until_ready(sock)


def read_until_ready(sock: socket.socket) -> list[tuple[bytes, bytes]]:
    messages = []
    while True:
        msg = read_message(sock)
        assert msg is not None, f"server closed the connection; got {messages}"
        messages.append(msg)
        if msg[0] == b"Z":
            return messages
        assert msg[0] != b"R" or struct.unpack("!I", msg[1][:4])[0] == 0, "trust auth expected"


def wait_for_close(sock: socket.socket, timeout: float = 10.0) -> list[tuple[bytes, bytes]]:
    """Reads until the server closes the connection; fails if it is still open after `timeout`.
    Returns the messages it sent on the way out (typically one ErrorResponse)."""
    deadline = time.monotonic() + timeout
    sock.settimeout(1.0)
    messages = []
    while time.monotonic() < deadline:
        try:
            msg = read_message(sock)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return messages
        if msg is None:
            return messages
        messages.append(msg)
    raise AssertionError(f"server kept the connection open for {timeout}s; sent {messages}")
