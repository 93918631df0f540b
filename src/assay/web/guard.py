"""The request guard in front of the web app: Host, Origin, body size and response headers.

A pure ASGI middleware, outermost, so that every response (the app's, Starlette's 404 and
500, and its own refusals) carries the security headers.

- **Host allow-list** (DNS rebinding): a request is served only when its ``Host`` names
  the bound host, ``localhost``, ``127.0.0.1``, ``::1`` or a name added with
  ``allowed_hosts``; anything else gets a 400 before the app sees it.
- **Origin check** (cross-site requests): a state-changing request (POST, PUT, PATCH,
  DELETE) carrying an ``Origin`` must come from the page's own origin, and one marked
  ``Sec-Fetch-Site: cross-site`` or ``same-site`` is refused (403). Clients that send no
  ``Origin`` (curl, scripts) are not browsers acting for another site and pass.
- **Byte-counted body limit**: the body is counted as it is received, whatever
  ``Content-Length`` says or whether it is chunked; past the limit the app's next read
  raises `BodyTooLarge` (answered 413) and nothing more is read: a later read gets
  ``http.disconnect`` without touching the server's ``receive``.
- **Connection: close** on any response sent before the request's body was read to its
  end (a 413, a quota's 429): the server then closes the connection instead of reading
  and discarding the rest of the body to keep it alive.
- **Headers**: CSP, ``X-Content-Type-Options: nosniff``, ``X-Frame-Options``,
  ``Referrer-Policy``, ``Cross-Origin-Opener/Resource-Policy`` and ``Cache-Control:
  no-store`` unless the route set its own.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable, Iterable
from contextlib import suppress
from typing import Any
from urllib.parse import urlsplit

__all__ = ["BodyTooLarge", "Guard", "allowed_host_names", "split_host"]

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Largest JSON body the API reads (an audit request is a few hundred bytes).
JSON_BODY_LIMIT = 64 * 1024
#: Room for the multipart framing around the file of an upload.
MULTIPART_SLACK = 64 * 1024

#: Strict default: nothing loads, nothing frames, scripts off (JSON, downloads, errors).
DEFAULT_CSP = ("default-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
               "form-action 'none'; sandbox")
_DEFAULT_HEADERS = (
    (b"content-security-policy", DEFAULT_CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
)
_NAME = re.compile(r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*$")
_IPV6 = re.compile(r"^[0-9a-f:.]+$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class BodyTooLarge(Exception):
    """The request body went past its limit; nothing beyond it was read."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than {limit} bytes.")
        self.limit = limit


def split_host(value: str) -> tuple[str, int | None] | None:
    """``Host`` header value to (lower-case name, port); None when malformed.

    ``"[::1]:8000"`` gives ``("::1", 8000)``, ``"Example.com."`` ``("example.com", None)``.
    """
    value = value.strip().lower()
    if value.startswith("["):
        name, sep, rest = value[1:].partition("]")
        if not sep or not _IPV6.match(name) or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:] if rest else None
    else:
        if value.count(":") > 1:  # a bare IPv6 address is not a valid Host
            return None
        name, sep, port_text = value.partition(":")
        port_text = port_text if sep else None
        name = name.rstrip(".")
        if not _NAME.match(name):
            return None
    port = None
    if port_text is not None:
        if not port_text.isdigit() or len(port_text) > 5 or int(port_text) > 65535:
            return None
        port = int(port_text)
    return name, port


def allowed_host_names(host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """Host names a server bound to `host` answers to.

    The loopback names always; the bound host itself; for a wildcard bind (``0.0.0.0``,
    ``::``) this machine's host name, its FQDN and the addresses they resolve to; and
    every name in `extra` (``--allowed-host``).
    """
    names = set(LOOPBACK_NAMES)
    names.update(name.strip("[]").lower().rstrip(".") for name in extra if name)
    bound = host.strip("[]").lower()
    if bound in WILDCARD_HOSTS:
        names.update(_machine_names())
    else:
        names.add(bound.rstrip("."))
    return frozenset(names)


def _machine_names() -> set[str]:
    names = set()
    with suppress(OSError):
        names.add(socket.gethostname().lower())
        names.add(socket.getfqdn().lower())
        _, aliases, addresses = socket.gethostbyname_ex(socket.gethostname())
        names.update(a.lower() for a in aliases)
        names.update(addresses)
    return {name for name in names if name}


def same_origin(origin: str, scheme: str, host: tuple[str, int | None]) -> bool:
    """Whether an ``Origin`` header names the request's own scheme, host and port."""
    try:
        parts = urlsplit(origin.strip())
        origin_port = parts.port
    except ValueError:
        return False
    if parts.scheme not in _DEFAULT_PORTS or parts.scheme != scheme or not parts.hostname:
        return False
    default = _DEFAULT_PORTS[scheme]
    return (parts.hostname.lower().rstrip(".") == host[0]
            and (origin_port or default) == (host[1] or default))


class Guard:
    """ASGI middleware enforcing the checks in the module docstring.

    Parameters
    ----------
    app : ASGI app
    hosts : set of str
        Host names served (`allowed_host_names`).
    body_limit : callable(path) -> int
        Largest body, in bytes, for a request to that path.
    """

    def __init__(self, app: Any, hosts: frozenset[str], body_limit: Callable[[str], int]) -> None:
        self.app = app
        self.hosts = hosts
        self.body_limit = body_limit

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _with_headers(send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await _send_json(send, *refusal)
            return
        limit = self.body_limit(scope.get("path", ""))
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _send_json(send, 413, f"the request body is larger than the "
                                        f"{_size(limit)} limit.")
            return
        has_body = (declared.isdigit() and int(declared) > 0) or \
            "chunked" in headers.get("transfer-encoding", "").lower()
        body = _CountedBody(receive, limit, done=not has_body)
        await self.app(scope, body.receive, _closing(send, body))

    def _refusal(self, scope: dict, headers: dict[str, str]) -> tuple[int, str] | None:
        raw_host = headers.get("host", "")
        host = split_host(raw_host)
        if host is None or host[0] not in self.hosts:
            return 400, (f"this server does not answer to the host {raw_host[:100]!r}; start "
                         f"`assay serve` with --allowed-host NAME to serve a name.")
        if scope.get("method", "GET").upper() not in STATE_CHANGING:
            return None
        fetch_site = headers.get("sec-fetch-site", "").lower()
        origin = headers.get("origin")
        if fetch_site in ("cross-site", "same-site") or (
                origin is not None and not same_origin(origin, scope.get("scheme", "http"),
                                                       host)):
            return 403, "cross-site requests are refused; use the page this server serves."
        return None


class _CountedBody:
    """The request's `receive`, counted: `BodyTooLarge` instead of a byte past `limit`.

    ``done`` turns true once the whole body was read; ``over`` once the limit was passed,
    after which the server's `receive` is never called again.
    """

    def __init__(self, receive: Callable, limit: int, done: bool = False) -> None:
        self._receive = receive
        self.limit = limit
        self.seen = 0
        self.done = done
        self.over = False

    async def receive(self) -> dict:
        if self.over:  # reading stopped at the limit: to the app the client is gone
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self.limit:
                self.over = True
                raise BodyTooLarge(self.limit)
            if not message.get("more_body", False):
                self.done = True
        elif message["type"] == "http.disconnect":
            self.done = True
        return message


def _closing(send: Callable, body: _CountedBody) -> Callable:
    """`send` that adds ``Connection: close`` to a response that leaves the body unread:
    the server then closes the connection rather than reading the rest to reuse it."""
    async def send_closing(message: dict) -> None:
        if message["type"] == "http.response.start" and not body.done:
            headers = list(message.get("headers", []))
            if not any(name.lower() == b"connection" for name, _ in headers):
                headers.append((b"connection", b"close"))
            message = {**message, "headers": headers}
        await send(message)

    return send_closing


def _with_headers(send: Callable) -> Callable:
    async def send_with_headers(message: dict) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            present = {name.lower() for name, _ in headers}
            headers.extend(item for item in _DEFAULT_HEADERS if item[0] not in present)
            message = {**message, "headers": headers}
        await send(message)

    return send_with_headers


async def _send_json(send: Callable, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 1024 / 1024:g} MB" if n_bytes >= 1024 * 1024 else f"{n_bytes} bytes"
