"""A real S3-compatible server on loopback for the object-storage tests, and a fault proxy.

`S3Server` runs `s3s-fs` (installed by scripts/setup.sh): objects are plain files under its
root directory, a bucket is a directory. `FaultProxy` sits between Basin and the server and
forwards every request unchanged (SigV4 signatures cover the Host header, which is kept), or
answers like a throttling S3 (503 SlowDown), or accepts connections and never answers.
"""

from __future__ import annotations

import http.client
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from conftest import free_ports

ACCESS_KEY = "basin-test-access"
SECRET_KEY = "basin-test-secret-Xq9vZ2"


class S3Server:
    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        binary = shutil.which("s3s-fs")
        if binary is None:
            raise RuntimeError("s3s-fs is not installed: run scripts/setup.sh")
        (self.port,) = free_ports(1)
        self.log = open(root.parent / "s3s-fs.log", "wb")
        self.process = subprocess.Popen(
            [
                binary, "--host", "127.0.0.1", "--port", str(self.port),
                "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY, str(root),
            ],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.05)
        raise RuntimeError(f"s3s-fs did not start: {(root.parent / 's3s-fs.log').read_text()}")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def bucket(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(exist_ok=True)
        return path

    def upload(self, source: Path, bucket: str, key: str) -> None:
        """Puts `source` into the bucket through the S3 API (multipart when large), as a
        client would. s3s-fs keeps the ETag of objects it received; for a file merely placed
        under its root it hashes the whole file on every GET and HEAD, which at SF 1 costs
        seconds per query and says nothing about Basin."""
        import pyarrow.fs as pafs

        s3 = pafs.S3FileSystem(
            access_key=ACCESS_KEY, secret_key=SECRET_KEY, region="us-east-1",
            endpoint_override=f"127.0.0.1:{self.port}", scheme="http",
        )
        self.bucket(bucket)
        pafs.copy_files(
            str(source), f"{bucket}/{key}",
            source_filesystem=pafs.LocalFileSystem(), destination_filesystem=s3,
        )

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


class FaultProxy:
    """Forwards to `upstream_port`; `mode` is "pass", "throttle" or "blackhole"."""

    def __init__(self, upstream_port: int):
        self.mode = "pass"
        self.requests = 0
        self.throttled = 0
        # (method, path, Range header) of every request, for tests that count what was read.
        self.log: list[tuple[str, str, str]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def handle_any(self) -> None:
                proxy.requests += 1
                proxy.log.append((self.command, self.path, self.headers.get("Range", "")))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if proxy.mode == "blackhole":
                    time.sleep(3600)
                    return
                if proxy.mode == "throttle":
                    proxy.throttled += 1
                    payload = (
                        b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
                        b"<Message>Please reduce your request rate.</Message></Error>"
                    )
                    self.send_response(503)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                    return
                upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=60)
                upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in self.headers.items():
                    upstream.putheader(name, value)
                upstream.endheaders(body)
                response = upstream.getresponse()
                data = response.read()
                self.send_response(response.status, response.reason)
                for name, value in response.getheaders():
                    if name.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(name, value)
                # A HEAD answer has no body but the object's length.
                length = response.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length or str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                upstream.close()

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = handle_any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
