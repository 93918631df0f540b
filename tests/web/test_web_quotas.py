"""The web app on a shared host: upload quotas (429), the form's limits from the CLI's
checks, a private workdir, and a connection closed on an oversized body."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import re
import select
import socket
import stat
import time
import warnings

import pytest

with warnings.catch_warnings():  # starlette prefers httpx2; httpx is what is installed
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from _helpers import live_server, start_chunked_upload
from assay.data import make_synthetic
from assay.web import create_app

BASE = "http://127.0.0.1:8000"
_LOSS_ONLY = {"privacy": {"attacks": ["loss"], "noise_grid": []},
              "groups": {"n_permutations": 0, "min_support": 20}}


def _csv(n_rows: int = 300) -> bytes:
    return make_synthetic(n_rows, 2).to_csv(index=False).encode()


def _upload(client, payload: bytes, name: str = "loans.csv"):
    return client.post("/api/upload", files={"file": (name, payload, "text/csv")})


@pytest.fixture()
def no_training(monkeypatch):
    """run_audit stand-in: an accepted audit ends at once, nothing is trained."""
    import assay.audit

    calls = []

    def run_audit(config, **kwargs):
        calls.append(config)
        raise assay._validation.InvalidParameterError("stopped by the test")

    monkeypatch.setattr(assay.audit, "run_audit", run_audit)
    return calls


# --------------------------------------------------------------------------- quotas


def test_forty_uploads_of_a_client_are_not_all_kept(tmp_path):
    """The probe's case: 0.9 MB uploads one after another, with the default limits."""
    app = create_app(tmp_path)
    payload = _csv(300)
    payload += payload.split(b"\n", 1)[1] * (900_000 // len(payload))  # about 0.9 MB
    assert 850_000 < len(payload) < 1_000_000
    with TestClient(app, base_url=BASE) as c:
        statuses = [_upload(c, payload).status_code for _ in range(11)]
        assert statuses == [200] * 10 + [429]
        refused = _upload(c, payload)
        assert refused.status_code == 429
        body = refused.json()
        assert body["limit"] == "client_uploads"
        assert "already keeps 10 uploads, the most one client may keep at once (10)" \
            in body["error"]
        assert "kept 60 min" in body["error"] and "room frees up in about 60 min" in body["error"]
        assert 3000 < body["retry_after_s"] <= 3600
        assert refused.headers["retry-after"] == str(body["retry_after_s"])
        assert len(app.state.assay.uploads) == 10
        assert len(list((tmp_path / "uploads").iterdir())) == 10


def test_client_bytes_quota_says_when_room_frees_up(tmp_path):
    payload = _csv(300)
    size = len(payload)
    app = create_app(tmp_path, max_upload_bytes=size, max_client_bytes=2 * size + 10,
                     retention_s=1.5)
    with TestClient(app, base_url=BASE) as c:
        assert [_upload(c, payload).status_code for _ in range(2)] == [200, 200]
        refused = _upload(c, payload)
        assert refused.status_code == 429
        body = refused.json()
        assert body["limit"] == "client_bytes"
        assert "and this" in body["error"] and "file would pass the" in body["error"]
        assert "room frees up in about" in body["error"]
        assert 1 <= body["retry_after_s"] <= 2
        # Once the oldest expires there is room again.
        deadline = time.monotonic() + 15
        while _upload(c, payload).status_code == 429:
            assert time.monotonic() < deadline, "no room after the retention period"
            time.sleep(0.2)


def test_total_quota_counts_every_client(tmp_path):
    app = create_app(tmp_path, max_client_uploads=2, max_total_uploads=3)
    payload = _csv()
    with TestClient(app, base_url=BASE, client=("10.0.0.1", 1000)) as first:
        second = TestClient(app, base_url=BASE, client=("10.0.0.2", 1000))
        third = TestClient(app, base_url=BASE, client=("10.0.0.3", 1000))
        assert [_upload(first, payload).status_code for _ in range(3)] == [200, 200, 429]
        assert _upload(first, payload).json()["limit"] == "client_uploads"
        assert "your address (10.0.0.1)" in _upload(first, payload).json()["error"]
        assert _upload(second, payload).status_code == 200  # a client quota of its own
        refused = _upload(third, payload)
        assert refused.status_code == 429 and refused.json()["limit"] == "total_uploads"
        assert "all clients together may keep at once (3)" in refused.json()["error"]
        clients = sorted(u.client for u in app.state.assay.uploads.values())
        assert clients == ["10.0.0.1", "10.0.0.1", "10.0.0.2"]


def test_client_at_its_quota_is_refused_before_its_body_is_read(tmp_path):
    app = create_app(tmp_path, max_client_uploads=1)
    with TestClient(app, base_url=BASE, client=("127.0.0.1", 1)) as c:
        assert _upload(c, _csv()).status_code == 200
        status, headers, body, pulled = _asgi(
            app, "/api/upload", [b"x" * 65536] * 100,
            [(b"content-type", b"multipart/form-data; boundary=b"),
             (b"transfer-encoding", b"chunked")])
    assert status == 429 and json.loads(body)["limit"] == "client_uploads"
    assert pulled == 0
    assert headers[b"connection"] == b"close"  # the server does not drain the body


def test_quota_message_names_the_limit_and_when_room_frees_up(tmp_path):
    from assay.web.app import Upload

    mb = 1024 * 1024
    app = create_app(tmp_path, max_upload_bytes=10 * mb, max_client_uploads=3,
                     max_client_bytes=20 * mb, max_total_uploads=5, max_total_bytes=40 * mb)
    state = app.state.assay
    now = 100_000.0
    state.uploads = {"a": Upload(now - 3000, "1.2.3.4", 8 * mb),
                     "b": Upload(now - 2000, "1.2.3.4", 8 * mb),
                     "c": Upload(now - 60, "5.6.7.8", 1 * mb)}
    assert state.quota_refusal("1.2.3.4", 4 * mb, now) is None  # 20 MB: just fits
    # 8 + 8 + 5 > 20: room once "a" expires, 600 s from now.
    body = json.loads(state.quota_refusal("1.2.3.4", 5 * mb, now).body)
    assert body["limit"] == "client_bytes" and body["retry_after_s"] == 600
    assert body["error"] == ("upload refused: your address (1.2.3.4) already keeps 16 MB of "
                             "uploads, and this 5 MB file would pass the 20 MB one client may "
                             "keep at once. Uploads are kept 60 min; room frees up in about "
                             "10 min, as the oldest expire.")
    # 8 + 8 + 13 > 20 needs both "a" and "b" gone: 1600 s.
    assert json.loads(state.quota_refusal("1.2.3.4", 13 * mb, now).body)["retry_after_s"] \
        == 1600
    state.uploads["d"] = Upload(now - 10, "1.2.3.4", 1)
    body = json.loads(state.quota_refusal("1.2.3.4", None, now).body)
    assert body["limit"] == "client_uploads" and body["retry_after_s"] == 600
    state.uploads["e"] = Upload(now - 5, "9.9.9.9", 1)
    body = json.loads(state.quota_refusal("7.7.7.7", None, now).body)
    assert body["limit"] == "total_uploads" and body["retry_after_s"] == 600
    assert "this server already keeps 5 uploads" in body["error"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"max_client_uploads": 0}, "max_client_uploads must be an integer in [1, inf)"),
    ({"max_client_uploads": 5, "max_total_uploads": 4}, "max_total_uploads (at least"),
    ({"max_upload_bytes": 1000, "max_client_bytes": 999}, "max_client_bytes (at least"),
    ({"max_client_bytes": 10**9, "max_total_bytes": 10**8}, "max_total_bytes (at least"),
    ({"max_total_bytes": 2.5}, "max_total_bytes"),
])
def test_quota_parameters_are_checked(tmp_path, kwargs, message):
    from assay._validation import InvalidParameterError

    with pytest.raises(InvalidParameterError, match=re.escape(message)):
        create_app(tmp_path, **kwargs)


# --------------------------------------------------------------------------- form limits


def _page_models_input(client) -> dict[str, int]:
    tag = re.search(r'<input type="number" id="models"[^>]*>', client.get("/").text).group(0)
    return {k: int(v) for k, v in re.findall(r'(min|max|value)="(\d+)"', tag)}


def _start(client, upload_id, models):
    return client.post("/api/audit", json={"upload_id": upload_id, "target": "approved",
                                           "protected": ["sex"], "models": models})


def test_models_below_the_attacks_minimum_is_a_400_up_front(tmp_path, no_training):
    app = create_app(tmp_path)  # default attacks: loss, lira, rmia
    with TestClient(app, base_url=BASE) as c:
        upload_id = _upload(c, _csv()).json()["upload_id"]
        refused = _start(c, upload_id, 4)
        assert refused.status_code == 400
        error = refused.json()["error"]
        assert error.startswith("models must be at least 6 for lira") and "\n" not in error
        assert app.state.assay.jobs == {} and no_training == []
        assert _start(c, upload_id, 6).status_code == 200
        for models, message in [(5, "models must be an even"), (258, "at most 256"),
                                (2**70, "at most 256"), ("8", "models must be an integer")]:
            response = _start(c, upload_id, models)
            assert response.status_code == 400 and message in response.json()["error"]


@pytest.mark.parametrize(("defaults", "low"), [(None, 6), (_LOSS_ONLY, 4)])
def test_page_limits_are_what_the_server_accepts(tmp_path, no_training, defaults, low):
    app = create_app(tmp_path, defaults=defaults)
    with TestClient(app, base_url=BASE) as c:
        limits = c.get("/api/limits").json()
        assert limits["models"] == {"min": low, "max": 256, "step": 2, "default": 16}
        assert limits["quotas"]["client_uploads"] == 10
        page = _page_models_input(c)
        assert page == {"min": low, "max": 256, "value": 16}
        assert "__" not in c.get("/").text.split("<script>")[0]  # every value filled in
        upload_id = _upload(c, _csv()).json()["upload_id"]
        # The page's own bounds are accepted; one step outside them is refused.
        assert _start(c, upload_id, page["min"]).status_code == 200
        assert _start(c, upload_id, page["max"]).status_code == 200
        assert _start(c, upload_id, page["min"] - 2).status_code == 400
        assert _start(c, upload_id, page["max"] + 2).status_code == 400


# --------------------------------------------------------------------------- workdir


def _mode(path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_existing_open_workdir_is_made_private(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    os.chmod(work, 0o777)
    (work / "notes.txt").write_text("kept")
    create_app(work)
    assert _mode(work) == 0o700
    assert (work / "notes.txt").read_text() == "kept"


def test_workdir_of_another_user_is_refused(tmp_path, monkeypatch):
    from assay._validation import InvalidParameterError

    work = tmp_path / "shared"
    work.mkdir(mode=0o777)
    os.chmod(work, 0o777)
    monkeypatch.setattr(os, "geteuid", lambda: work.stat().st_uid + 1)
    with pytest.raises(InvalidParameterError, match="workdir must be a folder you own"):
        create_app(work)
    assert _mode(work) == 0o777  # left as it was


def test_serve_makes_workdir_private_and_passes_the_quotas(tmp_path, monkeypatch, capsys):
    import uvicorn

    from assay.cli import main

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    work = tmp_path / "work"
    work.mkdir()
    os.chmod(work, 0o777)
    old = os.umask(0o022)
    try:
        assert main(["serve", "--workdir", str(work), "--max-client-uploads", "3",
                     "--max-client-mb", "50", "--max-total-uploads", "7"]) == 0
    finally:
        os.umask(old)
    assert _mode(work) == 0o700
    app, kwargs = calls[0]
    assert kwargs["proxy_headers"] is False  # X-Forwarded-For cannot pick the client
    quotas = app.state.assay.quotas
    assert (quotas.client_uploads, quotas.client_bytes, quotas.total_uploads) == \
        (3, 50 * 1024 * 1024, 7)
    monkeypatch.setattr(os, "geteuid", lambda: work.stat().st_uid + 1)
    assert main(["serve", "--workdir", str(work)]) == 2
    err = capsys.readouterr().err
    assert "workdir must be a folder you own" in err and len(err.strip().splitlines()) == 1
    for args, message in [
            (["--max-client-mb", "0"], "--max-client-mb (at least --max-upload-mb) must be"),
            (["--max-client-uploads", "0"], "--max-client-uploads must be"),
            (["--max-client-uploads", "200"], "--max-total-uploads (at least"),
            (["--max-total-mb", "50"], "--max-total-mb (at least --max-client-mb) must be "
                                       "a number in [100, inf)")]:
        assert main(["serve", *args]) == 2
        assert message in capsys.readouterr().err
    assert len(calls) == 1


# --------------------------------------------------------------------------- body


def _asgi(app, path: str, chunks, headers: list[tuple[bytes, bytes]]):
    """A POST through the ASGI app; (status, headers, body, bytes the app pulled)."""
    pulled = 0
    messages = iter(chunks)
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal pulled
        body = next(messages, None)
        if body is None:
            return {"type": "http.disconnect"}
        pulled += len(body)
        return {"type": "http.request", "body": body, "more_body": True}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 8000), "headers": [(b"host", b"127.0.0.1:8000"), *headers]}
    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # clear of any running loop
        pool.submit(asyncio.run, app(scope, receive, send)).result()
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), body, pulled


def test_reads_after_the_limit_do_not_reach_the_server(tmp_path):
    """Past the limit the guard answers a read itself: the server's receive is not called."""
    from assay.web.guard import BodyTooLarge, Guard

    calls = {"receive": 0}
    reads = []

    async def server_receive() -> dict:
        calls["receive"] += 1
        return {"type": "http.request", "body": b"x" * 100, "more_body": True}

    async def app(scope, receive, send):
        with contextlib.suppress(BodyTooLarge):
            while True:
                await receive()
        reads.append(await receive())  # as a response's disconnect listener would
        await send({"type": "http.response.start", "status": 413, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sent = []

    async def send(message):
        sent.append(message)

    guard = Guard(app, frozenset({"127.0.0.1"}), lambda path: 250)
    scope = {"type": "http", "method": "POST", "scheme": "http", "path": "/x",
             "headers": [(b"host", b"127.0.0.1"), (b"transfer-encoding", b"chunked")]}
    asyncio.run(guard(scope, server_receive, send))
    assert calls["receive"] == 3 and reads == [{"type": "http.disconnect"}]
    assert (b"connection", b"close") in sent[0]["headers"]


def test_server_closes_the_connection_on_an_oversized_chunked_upload(tmp_path):
    """Through uvicorn and a socket: after the 413 the server closes the connection, so
    the client's sending fails while most of its 200 MB body is still unsent."""
    app = create_app(tmp_path, max_upload_bytes=1_000_000)
    budget = 200 * 2**20
    sent, response, closed = 0, b"", None
    with live_server(app) as port, \
            socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        block = start_chunked_upload(sock, port)  # 64 KiB of rows per chunk
        deadline = time.monotonic() + 60
        while sent < budget and time.monotonic() < deadline:
            try:
                if select.select([sock], [], [], 0)[0]:
                    chunk = sock.recv(65536)
                    if not chunk:
                        closed = "end of stream"
                        break
                    response += chunk
                    continue
                sock.sendall(block)
            except (BrokenPipeError, ConnectionResetError) as exc:
                closed = type(exc).__name__
                break
            sent += 64 * 1024
    assert closed is not None, f"the server read all {sent / 2**20:.0f} MB without closing"
    assert sent < 64 * 2**20  # the kernel's buffers included, far below the 200 MB
    if response:  # a reset can discard it before it is read; when read, it is the 413
        assert response.startswith(b"HTTP/1.1 413"), response[:200]
        assert b"connection: close" in response.lower()
    assert list((tmp_path / "uploads").iterdir()) == []
