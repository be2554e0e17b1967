"""Request bodies sent with ``Transfer-Encoding: chunked`` and no ``Content-Length``.

The OpenLineage Java client (Spark, Flink) sends every event this way, plain or gzip. Django reads a body
only up to ``CONTENT_LENGTH`` (none: an empty body), so both servers Steward runs under are taught here:

- granian and gunicorn decode the chunks themselves and say so (``wsgi.input_terminated``); ``ChunkedBodyMiddleware``
  reads the decoded body (at most ``DATA_UPLOAD_MAX_MEMORY_SIZE`` + 1 bytes, so the size limit still
  answers 413) and hands it to Django with its length;
- Django's development server (``make run``, and the tests' live server) does not decode them;
  ``DevServerHandler`` does, from the socket, before Django sees the request.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
from django.core.servers import basehttp
from django.http import HttpRequest, HttpResponse

__all__ = ["ChunkedBodyMiddleware", "DevServerHandler", "dechunk", "install_dev_server_support", "is_chunked"]

MAX_CHUNK_LINE = 1024


def is_chunked(environ: dict[str, Any]) -> bool:
    return "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower() and not environ.get("CONTENT_LENGTH")


def _limit() -> int:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return limit if limit is not None else 2**62


def dechunk(raw: Any, limit: int) -> tuple[bytes, bool]:
    """Decode a chunked body from ``raw`` (a file over the socket): ``(body, complete)``. Stops after
    ``limit`` + 1 bytes (complete is then False: the caller closes the connection) or at a framing error."""
    out = bytearray()
    while True:
        line = raw.readline(MAX_CHUNK_LINE)
        try:
            size = int(line.split(b";", 1)[0].strip() or b"x", 16)
        except ValueError:
            return bytes(out), False
        if size == 0:
            while raw.readline(MAX_CHUNK_LINE) not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return bytes(out), True
        take = min(size, limit + 1 - len(out))
        out += raw.read(take)
        if take < size:
            return bytes(out), False
        raw.readline(MAX_CHUNK_LINE)  # the CRLF after the chunk


def _read_limited(stream: Any, limit: int) -> bytes:
    out = bytearray()
    while len(out) <= limit:
        piece = stream.read(min(65536, limit + 1 - len(out)))
        if not piece:
            break
        out += piece
    return bytes(out)


class ChunkedBodyMiddleware:
    """For servers that decode chunked bodies (``wsgi.input_terminated``: granian, gunicorn): give Django the body."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        meta = request.META
        if is_chunked(meta) and meta.get("wsgi.input_terminated"):
            body = _read_limited(meta["wsgi.input"], _limit())
            meta["CONTENT_LENGTH"] = str(len(body))
            # django-stubs types _stream as BinaryIO; Django itself stores a LimitedStream there (WSGIRequest.__init__).
            request._stream = LimitedStream(io.BytesIO(body), len(body))  # type: ignore[assignment]
        return self.get_response(request)


class DevServerHandler(basehttp.ServerHandler):
    """Django's development server handler, decoding chunked request bodies first."""

    def __init__(self, stdin: Any, stdout: Any, stderr: Any, environ: dict[str, Any], **kwargs: Any) -> None:
        self.unread_body = False
        if is_chunked(environ):
            body, complete = dechunk(stdin, _limit())
            environ["CONTENT_LENGTH"] = str(len(body))
            stdin = io.BytesIO(body)
            self.unread_body = not complete
        super().__init__(stdin, stdout, stderr, environ, **kwargs)

    def cleanup_headers(self) -> None:
        super().cleanup_headers()
        if self.unread_body:  # the rest of the body is still on the socket: this connection cannot go on
            # Set at runtime by wsgiref (headers, in start_response) and Django's WSGIRequestHandler (request_handler);
            # the stubs do not declare them.
            self.headers["Connection"] = "close"  # type: ignore[attr-defined]
            self.request_handler.close_connection = True  # type: ignore[attr-defined]


def install_dev_server_support() -> None:
    """Make ``runserver`` and the test live server decode chunked bodies (granian and gunicorn need nothing here)."""
    basehttp.ServerHandler = DevServerHandler  # type: ignore[misc]  # deliberate monkey-patch of the class
