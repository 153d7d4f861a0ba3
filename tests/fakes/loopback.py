"""What the loopback batch servers share: a threading HTTP server on 127.0.0.1 whose handler hands
each request to `route(method, path, headers, body)`, JSON replies, and multipart form parsing
(the providers' file uploads)."""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # a client that hung up is no failure of the server's
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


class LoopbackServer:
    """Subclasses define route(); it returns (status, a dict sent as JSON or bytes sent as they are).
    A batch server answers each request with `responder(request)` (the answer's text) once a batch
    has been polled `polls_in_progress` times; `url` is what a client's base_url is set to."""

    URL_PATH = ""  # what the provider's SDK expects after the host in base_url

    def __init__(self, responder=None, polls_in_progress: int = 1) -> None:
        self.responder, self.polls_in_progress = responder, polls_in_progress
        self.ids = itertools.count(1)  # ids of files and batches
        self.calls: list[tuple[str, str]] = []  # (method, path) of every request, in order
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def answer(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                server.calls.append((method, self.path))
                status, payload = server.route(method, self.path, self.headers, body)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header(
                    "content-type", "application/octet-stream" if isinstance(payload, bytes) else "application/json"
                )
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self.answer("GET")

            def do_POST(self):
                self.answer("POST")

            def do_DELETE(self):
                self.answer("DELETE")

        self.server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{self.URL_PATH}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def route(self, method: str, path: str, headers, body: bytes) -> tuple[int, dict | bytes]:
        raise NotImplementedError


def multipart_fields(content_type: str, body: bytes) -> dict:
    """A multipart/form-data body's parts by field name (email.message parts)."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"content-type: {content_type}\r\n\r\n".encode() + body
    )
    return {part.get_param("name", header="content-disposition"): part for part in message.iter_parts()}
