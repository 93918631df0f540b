"""The web app's API: upload checks, audit requests, status, the report, and its guards
(body limit, Host and Origin checks, headers, private files, retention, queue, cancel)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import stat
import threading
import time
import uuid
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

with warnings.catch_warnings():  # starlette prefers httpx2; httpx is what is installed
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from _helpers import live_server, start_chunked_upload, wait_for_job
from assay.data import make_synthetic
from assay.web import create_app
from assay.web.app import MAX_UPLOAD_BYTES, Job

_FAST = {"privacy": {"attacks": ["loss"], "noise_grid": []},
         "groups": {"n_permutations": 0, "min_support": 20}}


BASE = "http://127.0.0.1:8000"


@pytest.fixture()
def client(tmp_path):
    app = create_app(tmp_path, max_upload_bytes=200_000, defaults=_FAST)
    with TestClient(app, base_url=BASE) as c:
        yield c


def _csv(n_rows: int = 300) -> bytes:
    return make_synthetic(n_rows, 2).to_csv(index=False).encode()


def _upload(client, payload: bytes, name: str = "loans.csv", kind: str = "text/csv"):
    return client.post("/api/upload", files={"file": (name, payload, kind)})


def test_page_is_self_contained(client):
    page = client.get("/")
    assert page.status_code == 200
    assert 'id="upload-form"' in page.text and "http://" not in page.text
    assert "https://" not in page.text


def test_upload_returns_columns(client):
    response = _upload(client, _csv())
    assert response.status_code == 200
    data = response.json()
    assert data["n_rows"] == 300
    names = [c["name"] for c in data["columns"]]
    assert "approved" in names and "sex" in names
    assert {c["name"]: c["n_unique"] for c in data["columns"]}["sex"] == 2


@pytest.mark.parametrize(("payload", "name", "kind", "status", "message"), [
    (b"a,b\n1,2\n", "notes.txt", "text/plain", 400, "is not a CSV file"),
    (b"", "empty.csv", "text/csv", 400, "is empty"),
    (b"a,b\n" + b"1,2\n" * 10, "short.csv", "text/csv", 400, "needs at least 50"),
    (b"only\n" + b"1\n" * 80, "one.csv", "text/csv", 400, "1 column(s)"),
    (b"a,b\n" + b"1,2\n" * 60 + b"1,2,3,4\n", "broken.csv", "text/csv", 400, "could not be parsed"),
    (b"\xff\xfe\x00a,b\n", "utf16.csv", "text/csv", 400, "not UTF-8"),
    (b"a,b,a\n" + b"1,2,3\n" * 60, "dup.csv", "text/csv", 400, "duplicate column names: a"),
    (b"a,b\n" + b"1,2\n" * 60_000, "big.csv", "text/csv", 413, "limit"),
])
def test_upload_errors(client, payload, name, kind, status, message):
    response = _upload(client, payload, name, kind)
    assert response.status_code == status
    assert message in response.json()["error"]


def test_upload_keeps_dotted_names(client):
    response = _upload(client, b"x,x.1,y\n" + b"1,2,0\n3,4,1\n" * 30)
    assert response.status_code == 200
    assert [c["name"] for c in response.json()["columns"]] == ["x", "x.1", "y"]


def test_upload_without_file(client):
    response = client.post("/api/upload", data={"x": "1"})
    assert response.status_code == 400 and "choose a CSV file" in response.json()["error"]


@pytest.mark.parametrize(("body", "message"), [
    ({"upload_id": "0" * 32, "target": "approved", "protected": ["sex"]}, "upload a CSV"),
    ({"upload_id": "../../etc", "target": "approved", "protected": ["sex"]}, "upload a CSV"),
    ({"target": "", "protected": ["sex"]}, "choose the target"),
    ({"target": "approved", "protected": []}, "at least one protected"),
    ({"target": "sex", "protected": ["sex"]}, "cannot also be protected"),
    ({"target": "approved", "protected": ["sex"], "models": 5}, "models must be an even"),
    ({"target": "approved", "protected": ["nope"]}, "'nope' not found"),
    ({"target": "income", "protected": ["sex"], "task": "classification"},
     "looks continuous"),
])
def test_audit_request_errors(client, body, message):
    upload = _upload(client, _csv()).json()
    body = {"upload_id": upload["upload_id"], **body}
    response = client.post("/api/audit", json=body)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_unknown_job(client):
    assert client.get("/api/jobs/" + "a" * 32).status_code == 404
    assert client.get("/jobs/" + "a" * 32 + "/report").status_code == 404


def test_audit_end_to_end(client):
    upload = _upload(client, _csv()).json()
    started = client.post("/api/audit", json={"upload_id": upload["upload_id"],
                                              "target": "approved",
                                              "protected": ["sex", "region"], "models": 4})
    assert started.status_code == 200
    status = wait_for_job(client, started.json()["status_url"])
    assert status["state"] == "done", status
    assert status["fraction"] == 1.0 and status["summary"]
    report = client.get(status["report_url"])
    assert report.status_code == 200 and 'id="section-privacy"' in report.text
    result = client.get(status["result_url"]).json()
    assert result["data"]["protected"] == ["sex", "region"]
    assert result["data"]["name"] == "loans"
    # The report is framed by the page only and sandboxed (no script runs in it).
    assert "sandbox" in report.headers["content-security-policy"]
    assert "frame-ancestors 'self'" in report.headers["content-security-policy"]
    assert report.headers["x-frame-options"] == "SAMEORIGIN"
    # Every file the audit wrote is its owner's alone; result.json downloads as a file.
    workdir = client.app.state.assay.workdir
    modes = {p.relative_to(workdir).as_posix(): stat.S_IMODE(p.stat().st_mode)
             for p in workdir.rglob("*")}
    assert any(name.endswith("report.html") for name in modes)
    assert {name: m for name, m in modes.items() if m & 0o077} == {}
    assert "result.json" in [f["path"] for f in status["files"]]
    download = client.get(f"/jobs/{status['job_id']}/files/result.json")
    assert download.json() == result
    assert download.headers["content-disposition"].startswith("attachment")


def test_serve_command_starts_the_app(tmp_path):
    import socket
    import subprocess
    import sys
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "assay", "serve", "--port", str(port),
                             "--workdir", str(tmp_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as page:
                    body = page.read().decode()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("assay serve did not answer within 60 s")
                time.sleep(0.2)
        assert 'id="upload-form"' in body
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_serve_rejects_bad_port(capsys):
    from assay.cli import main

    assert main(["serve", "--port", "70000"]) == 2
    assert "--port must be an integer in [0, 65535]" in capsys.readouterr().err


# --------------------------------------------------------------------------- hardening

_SECURITY_HEADERS = ("content-security-policy", "x-content-type-options", "x-frame-options",
                     "referrer-policy")


def _asgi_post(app, path: str, chunks, headers: list[tuple[bytes, bytes]],
               method: str = "POST"):
    """A request through the ASGI app itself, the path as the server decoded it (no
    client-side clean-up of ``..``); return (status, headers, body, bytes pulled)."""
    pulled = 0
    messages = iter(chunks)
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal pulled
        try:
            body = next(messages)
        except StopIteration:
            return {"type": "http.disconnect"}
        pulled += len(body)
        return {"type": "http.request", "body": body, "more_body": True}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 50000),
             "server": ("127.0.0.1", 8000),
             "headers": [(b"host", b"127.0.0.1:8000"), *headers]}
    # In a thread of its own: a Playwright test earlier in this worker may have left an
    # event loop running in the main thread, where asyncio.run refuses to start.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, app(scope, receive, send)).result()
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), body, pulled


def test_chunked_300mb_upload_is_cut_off_at_the_limit(tmp_path):
    app = create_app(tmp_path)  # the default 20 MB limit
    boundary = "assayboundary1234"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"big.csv\"\r\nContent-Type: text/csv\r\n\r\na,b\r\n").encode()
    block = b"1,2\n" * (256 * 1024)  # 1 MiB
    n_blocks = 300

    def chunks():  # chunked: no Content-Length, 300 MiB if anyone read it all
        yield head
        yield from (block for _ in range(n_blocks))
        yield f"\r\n--{boundary}--\r\n".encode()

    status, headers, body, pulled = _asgi_post(
        app, "/api/upload", chunks(),
        [(b"content-type", f"multipart/form-data; boundary={boundary}".encode()),
         (b"transfer-encoding", b"chunked")])
    assert status == 413 and "20 MB limit" in json.loads(body)["error"]
    # Reading stopped within one block of the limit: far below 64 MB, never 300.
    assert MAX_UPLOAD_BYTES < pulled <= MAX_UPLOAD_BYTES + 64 * 1024 + len(block)
    assert pulled < 64 * 1024 * 1024
    assert list((tmp_path / "uploads").iterdir()) == []
    assert all(name in headers for name in (h.encode() for h in _SECURITY_HEADERS))


def test_chunked_upload_to_a_live_server_is_answered_413_early(tmp_path):
    """The same through uvicorn and a socket: the 413 comes back while the client is still
    sending, long before 64 MB (what it sent includes the kernel's socket buffers)."""
    import select
    import socket

    app = create_app(tmp_path)
    sent, response = 0, b""
    with live_server(app) as port, \
            socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        block = start_chunked_upload(sock, port)  # 64 KiB of rows per chunk
        while sent < 300 * 2**20:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                response = sock.recv(65536)
                break
            try:
                sock.sendall(block)
            except (BrokenPipeError, ConnectionResetError):
                response = sock.recv(65536)
                break
            sent += 64 * 1024
    assert response.startswith(b"HTTP/1.1 413"), response[:200]
    assert b"x-content-type-options: nosniff" in response
    assert sent < 64 * 2**20
    assert list((tmp_path / "uploads").iterdir()) == []


def test_declared_oversize_upload_is_refused_before_reading(tmp_path):
    app = create_app(tmp_path, max_upload_bytes=1000)
    status, _, body, pulled = _asgi_post(
        app, "/api/upload", iter([b"x" * 10]),
        [(b"content-type", b"multipart/form-data; boundary=x"),
         (b"content-length", b"5000000")])
    assert status == 413 and pulled == 0 and "limit" in json.loads(body)["error"]


def test_oversize_json_body_is_413(client):
    big = json.dumps({"target": "x" * 100_000}).encode()
    response = client.post("/api/audit", content=big,
                           headers={"content-type": "application/json"})
    assert response.status_code == 413


@pytest.mark.parametrize(("host", "served"), [
    ("127.0.0.1:8000", True), ("localhost:8000", True), ("LOCALHOST.", True),
    ("[::1]:8000", True), ("127.0.0.1", True),
    ("evil.example", False), ("evil.example:8000", False), ("127.0.0.1.evil.example", False),
    ("localhost:99999", False), ("::1", False), ("", False), ("local host", False),
])
def test_host_allow_list(client, host, served):
    response = client.get("/", headers={"Host": host})
    if served:
        assert response.status_code == 200
    else:
        assert response.status_code == 400
        assert "does not answer to the host" in response.json()["error"]
        assert response.headers["x-frame-options"] == "DENY"


def test_evil_host_is_refused_on_every_route(client):
    for method, path in [("GET", "/"), ("GET", "/api/jobs/" + "a" * 32),
                         ("POST", "/api/audit"), ("POST", "/api/upload")]:
        response = client.request(method, path, headers={"Host": "evil.example"})
        assert response.status_code == 400, (method, path)


def test_extra_allowed_hosts_and_wildcard_bind(tmp_path):
    app = create_app(tmp_path, host="0.0.0.0", allowed_hosts=["audit.lan"])
    with TestClient(app, base_url="http://audit.lan:8000") as c:
        assert c.get("/").status_code == 200
        assert c.get("/", headers={"Host": "evil.example"}).status_code == 400
        assert c.get("/", headers={"Host": "localhost:8000"}).status_code == 200
    assert "0.0.0.0" not in app.guard_hosts


def test_cross_site_text_plain_post_starts_nothing(client):
    upload = _upload(client, _csv()).json()
    body = json.dumps({"upload_id": upload["upload_id"], "target": "approved",
                       "protected": ["sex"], "models": 4})
    state = client.app.state.assay
    # The classic CSRF: a form on another site posting text/plain that parses as JSON.
    for headers in ({"Origin": "http://evil.example", "Content-Type": "text/plain"},
                    {"Origin": "null", "Content-Type": "text/plain"},
                    {"Origin": "http://127.0.0.1:9999", "Content-Type": "application/json"},
                    {"Origin": "https://127.0.0.1:8000", "Content-Type": "application/json"},
                    {"Sec-Fetch-Site": "cross-site", "Content-Type": "application/json"}):
        response = client.post("/api/audit", content=body, headers=headers)
        assert response.status_code == 403, headers
        assert "cross-site" in response.json()["error"]
    # Without an Origin (not a browser) text/plain is still not an audit request.
    response = client.post("/api/audit", content=body, headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    # A cross-site upload is refused too.
    response = client.post("/api/upload", files={"file": ("x.csv", _csv(), "text/csv")},
                           headers={"Origin": "http://evil.example"})
    assert response.status_code == 403
    assert state.jobs == {}
    assert len(state.uploads) == 1
    # The page's own origin is fine; reads are never checked for Origin.
    same = client.post("/api/audit", json={"upload_id": "0" * 32},
                       headers={"Origin": BASE, "Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 400 and "upload a CSV" in same.json()["error"]
    assert client.get("/", headers={"Origin": "http://evil.example"}).status_code == 200


@pytest.mark.parametrize("body", [
    b"", b"{", b"\xff\xfe", b"[" * 100_00 + b"]" * 100_00, b"[" * 30_000, b'"text"', b"1e999",
    b"null", b"[]", b"NaN", b"1" * 5000, b'{"upload_id": {"$gt": ""}}',
    b'{"upload_id": "' + b"0" * 32 + b'", "target": ["a"]}',
    b'{"target": {"a": [[[[[[[[[[1]]]]]]]]]]}, "protected": [[]], "models": "4"}',
])
def test_malformed_json_is_a_4xx(client, body):
    response = client.post("/api/audit", content=body,
                           headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500
    assert response.json()["error"]


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                     lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                     max_leaves=12)


def test_fuzzed_audit_requests_never_500(tmp_path):
    app = create_app(tmp_path, defaults=_FAST, max_queued=1000)
    state = app.state.assay
    hold = threading.Event()
    state.executor.submit(hold.wait)  # accepted audits wait; none runs
    c = TestClient(app, base_url=BASE)
    upload_id = _upload(c, _csv()).json()["upload_id"]
    columns = ["approved", "sex", "region", "income", "nope"]
    fields = {"upload_id": st.just(upload_id) | _JSON,
              "target": st.sampled_from(columns) | _JSON,
              "protected": st.lists(st.sampled_from(columns), max_size=3) | _JSON,
              "models": st.sampled_from([4, 6, 5, 0, -2, 2**70, 4.0]) | _JSON}

    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck),
              database=None)
    @given(body=st.fixed_dictionaries({}, optional=fields) | _JSON,
           raw=st.binary(max_size=200))
    def check(body, raw):
        response = c.post("/api/audit", content=json.dumps(body).encode(),
                          headers={"content-type": "application/json"})
        assert response.status_code in (200, 400), response.text
        assert ("job_id" in response.json()) == (response.status_code == 200)
        response = c.post("/api/audit", content=raw, headers={"content-type": "application/json"})
        assert response.status_code in (200, 400), response.text

    try:
        check()
    finally:
        hold.set()
        state.shutdown()


def test_security_headers_on_every_response(client):
    upload = _upload(client, _csv())
    responses = {"page": client.get("/"), "upload": upload,
                 "error": client.post("/api/audit", json={}),
                 "404": client.get("/nope"), "405": client.delete("/api/upload"),
                 "unknown job": client.get("/api/jobs/" + "b" * 32)}
    for name, response in responses.items():
        for header in _SECURITY_HEADERS:
            assert header in response.headers, (name, header)
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "DENY"
    # The page runs its own inline script and style only, by hash.
    csp = responses["page"].headers["content-security-policy"]
    assert "script-src 'sha256-" in csp and "unsafe-inline" not in csp
    assert "connect-src 'self'" in csp


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_uploads_are_private_and_expire(tmp_path):
    stale = tmp_path / "uploads" / ("c" * 32)  # left by an earlier run
    stale.mkdir(parents=True)
    (tmp_path / "uploads" / "notes").mkdir()  # not ours: never touched
    os.utime(stale, (1, 1))
    app = create_app(tmp_path, retention_s=0.6)
    with TestClient(app, base_url=BASE) as c:
        assert not stale.exists()  # swept at start-up
        upload_id = _upload(c, _csv()).json()["upload_id"]
        folder = tmp_path / "uploads" / upload_id
        assert _mode(tmp_path / "uploads") == 0o700 and _mode(folder) == 0o700
        assert {p.name: _mode(p) for p in folder.iterdir()} == {"data.csv": 0o600,
                                                                "name.txt": 0o600}
        deadline = time.monotonic() + 10
        while folder.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not folder.exists()
        response = c.post("/api/audit", json={"upload_id": upload_id, "target": "approved",
                                              "protected": ["sex"]})
        assert response.status_code == 400 and "upload a CSV" in response.json()["error"]
    assert (tmp_path / "uploads" / "notes").is_dir()


def test_shutdown_deletes_everything_of_the_instance(tmp_path):
    app = create_app(None)
    workdir = app.state.assay.workdir
    assert _mode(workdir) == 0o700
    with TestClient(app, base_url=BASE) as c:
        _upload(c, _csv())
        assert len(list((workdir / "uploads").iterdir())) == 1
    assert not workdir.exists()
    # A workdir the user named is kept; only the instance's entries go.
    app = create_app(tmp_path / "work")
    with TestClient(app, base_url=BASE) as c:
        _upload(c, _csv())
    assert (tmp_path / "work").is_dir()
    assert list((tmp_path / "work" / "uploads").iterdir()) == []


@pytest.fixture()
def fake_audit(monkeypatch):
    """run_audit stand-in that passes stages only when the test lets it."""
    import assay.audit

    gate = {"started": threading.Event(), "go": threading.Event(), "stages": []}

    def run_audit(config, *, on_stage, **kwargs):
        gate["started"].set()
        on_stage("training 4 models", 0.1)
        gate["go"].wait(20)
        for stage in ("privacy audit", "fairness audit", "done"):
            on_stage(stage, 0.6)
            gate["stages"].append(stage)
        raise AssertionError("the audit was not stopped")

    monkeypatch.setattr(assay.audit, "run_audit", run_audit)
    return gate


def _start(client, upload_id):
    return client.post("/api/audit", json={"upload_id": upload_id, "target": "approved",
                                           "protected": ["sex"], "models": 4})


def test_queue_is_bounded_and_queued_audits_cancel(tmp_path, fake_audit):
    app = create_app(tmp_path, defaults=_FAST, max_queued=2)
    with TestClient(app, base_url=BASE) as c:
        upload_id = _upload(c, _csv()).json()["upload_id"]
        running = _start(c, upload_id).json()["job_id"]
        assert fake_audit["started"].wait(20)
        queued = [_start(c, upload_id) for _ in range(2)]
        assert [r.status_code for r in queued] == [200, 200]
        full = _start(c, upload_id)
        assert full.status_code == 429 and full.headers["retry-after"] == "30"
        assert "already waiting" in full.json()["error"]
        first, second = (r.json()["job_id"] for r in queued)
        cancelled = c.delete(f"/api/jobs/{first}")
        assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
        again = c.post(f"/api/jobs/{second}/cancel")
        assert again.status_code == 200 and again.json()["state"] == "cancelled"
        assert c.post(f"/api/jobs/{second}/cancel").status_code == 409
        room = _start(c, upload_id)  # room again
        assert room.status_code == 200
        assert c.delete(f"/api/jobs/{room.json()['job_id']}").json()["state"] == "cancelled"
        # The running one is asked to stop and does so at its next stage.
        asked = c.delete(f"/api/jobs/{running}")
        assert asked.status_code == 202 and asked.json()["cancel_requested"]
        fake_audit["go"].set()
        deadline = time.monotonic() + 20
        while c.get(f"/api/jobs/{running}").json()["state"] == "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        status = c.get(f"/api/jobs/{running}").json()
        assert status["state"] == "cancelled" and not status["cancel_requested"]
        assert fake_audit["stages"] == []  # stopped before the next stage began
        assert not (tmp_path / "jobs" / running).exists()
        assert c.delete("/api/jobs/" + uuid.uuid4().hex).status_code == 404


def _finished_job(client, tmp_path) -> str:
    """A finished job with files, as an audit with a fairness section leaves them."""
    state = client.app.state.assay
    job = Job(job_id=uuid.uuid4().hex, upload_id="0" * 32, state="done", finished=time.time())
    out = tmp_path / "jobs" / job.job_id
    (out / "fairness").mkdir(parents=True)
    (out / "fairness" / "model_card.md").write_text("# Model card\n")
    (out / "fairness" / "model.skops").write_bytes(b"PK\x03\x04skops")
    (out / "result.json").write_text("{}")
    (out / "notes.txt").write_text("not a known suffix")
    (out / "page.html").write_text("<script>alert(1)</script>")
    (out / ".hidden.json").write_text("{}")
    (out / "cache").mkdir()
    (out / "cache" / "manifest.json").write_text("{}")
    (tmp_path / "secret.json").write_text('{"secret": 1}')
    (out / "leak.json").symlink_to(tmp_path / "secret.json")
    (out / "outside").symlink_to(tmp_path)
    state.jobs[job.job_id] = job
    return job.job_id


def test_job_files_serves_only_safe_regular_files_inside_the_job(client, tmp_path):
    job_id = _finished_job(client, tmp_path)
    card = client.get(f"/jobs/{job_id}/files/fairness/model_card.md")
    assert card.status_code == 200 and card.text == "# Model card\n"
    assert card.headers["content-disposition"].startswith('attachment; filename="model_card.md"')
    assert card.headers["content-type"].startswith("text/markdown")
    assert card.headers["x-content-type-options"] == "nosniff"
    model = client.get(f"/jobs/{job_id}/files/fairness/model.skops")
    assert model.content == b"PK\x03\x04skops"
    assert model.headers["content-type"] == "application/octet-stream"
    listed = client.get(f"/api/jobs/{job_id}").json()["files"]
    assert [f["path"] for f in listed] == ["fairness/model.skops", "fairness/model_card.md",
                                           "result.json"]
    assert listed[1]["url"] == f"/jobs/{job_id}/files/fairness/model_card.md"
    for path, status in [("notes.txt", 403), ("page.html", 403), (".hidden.json", 404),
                         ("cache/manifest.json", 404), ("leak.json", 404),
                         ("outside/secret.json", 404), ("../../secret.json", 404),
                         ("fairness/../result.json", 404), ("./result.json", 404),
                         ("/" + str(tmp_path / "secret.json"), 404), ("fairness", 403),
                         ("missing.json", 404), ("fairness//model.skops", 404),
                         ("fairness\\model.skops", 404), ("result.json\x00.md", 404),
                         ("", 404)]:
        status_got, _, body, _ = _asgi_post(client.app, f"/jobs/{job_id}/files/{path}",
                                            iter([b""]), [], method="GET")
        assert status_got == status, (path, status_got)
        assert b"secret" not in body
    for path in ("%2e%2e/%2e%2e/secret.json", "..%2f..%2fsecret.json"):  # as a client sends
        assert client.get(f"/jobs/{job_id}/files/{path}").status_code == 404
    assert client.get(f"/jobs/{'f' * 32}/files/result.json").status_code == 404
    # A finished audit can be deleted with its files.
    deleted = client.delete(f"/api/jobs/{job_id}")
    assert deleted.status_code == 200 and deleted.json()["deleted"]
    assert not (tmp_path / "jobs" / job_id).exists()
    assert (tmp_path / "secret.json").exists()  # the link was removed, not followed


def test_serve_warns_beyond_localhost_and_checks_options(monkeypatch, capsys, tmp_path):
    import uvicorn

    from assay.cli import main

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    old = os.umask(0o022)
    try:
        assert main(["serve", "--host", "0.0.0.0", "--port", "8123", "--workdir",
                     str(tmp_path / "w"), "--allowed-host", "audit.lan"]) == 0
        assert os.umask(0o022) == 0o077  # everything the server writes is private
    finally:
        os.umask(old)
    err = capsys.readouterr().err
    assert "warning: --host 0.0.0.0 makes this app reachable from other machines" in err
    assert "audit.lan" in err
    assert calls[0][1]["host"] == "0.0.0.0" and "audit.lan" in calls[0][0].guard_hosts
    assert _mode(tmp_path / "w") == 0o700
    assert main(["serve", "--workdir", str(tmp_path / "w2")]) == 0
    assert "warning" not in capsys.readouterr().err
    for args, message in [(["--retention-minutes", "0"], "--retention-minutes must be"),
                          (["--max-queued", "0"], "--max-queued must be"),
                          (["--workdir", __file__], "--workdir must be a folder")]:
        assert main(["serve", *args]) == 2
        assert message in capsys.readouterr().err
    assert len(calls) == 2


# --------------------------------------------------------------------------- synthetic release


def _synthetic_uploads(client, release: bytes | None = None, holdout: bytes | None = None
                       ) -> dict[str, str]:
    """The table, a leaky release of it (a copy) and a holdout from the same population."""
    table = _upload(client, _csv()).json()["upload_id"]
    release_id = _upload(client, release or _csv(), "release.csv").json()["upload_id"]
    holdout_id = _upload(client, holdout or make_synthetic(300, 7).to_csv(index=False).encode(),
                         "holdout.csv").json()["upload_id"]
    return {"upload_id": table, "synthetic_upload_id": release_id,
            "synthetic_holdout_upload_id": holdout_id}


@pytest.mark.parametrize(("change", "message"), [
    ({"synthetic_upload_id": None}, "upload the synthetic release too"),
    ({"synthetic_holdout_upload_id": None}, "upload the synthetic release's holdout too"),
    ({"synthetic_upload_id": "0" * 32}, "upload the synthetic release again"),
    ({"synthetic_holdout_upload_id": "../x"}, "holdout again (the upload was not found)"),
    ({"synthetic_holdout_upload_id": 7}, "holdout again (the upload was not found)"),
    ({"same": True}, "three different uploads"),
])
def test_synthetic_request_errors(client, change, message):
    body = {**_synthetic_uploads(client), "target": "approved", "protected": ["sex"],
            "models": 4}
    if change.pop("same", False):
        body["synthetic_holdout_upload_id"] = body["synthetic_upload_id"]
    body = {k: v for k, v in {**body, **change}.items() if v is not None}
    response = client.post("/api/audit", json=body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert client.app.state.assay.jobs == {}  # refused before any work


@pytest.mark.parametrize(("change", "message"), [
    ({"synthetic_generator": "ctgan"}, "synthetic.generator must be one of marginals, "),
    ({"synthetic_generator": "dp-marginals:often"}, "needs a risk target"),
    ({"synthetic_generator": ""}, "synthetic_generator must be a generator's name"),
    ({"synthetic_generator": "  "}, "synthetic_generator must be a generator's name"),
    ({"synthetic_generator": 7}, "synthetic_generator must be a generator's name"),
    ({"synthetic_generator": ["marginals"]}, "synthetic_generator must be a generator's name"),
    ({"synthetic_generator": "marginals", "synthetic_upload_id": None,
      "synthetic_holdout_upload_id": None}, "a generator alone audits nothing"),
    ({"synthetic_generator": "marginals", "synthetic_upload_id": None},
     "a generator alone audits nothing"),
])
def test_synthetic_generator_errors(client, change, message):
    body = {**_synthetic_uploads(client), "target": "approved", "protected": ["sex"],
            "models": 4}
    body = {k: v for k, v in {**body, **change}.items() if v is not None}
    response = client.post("/api/audit", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert message in error and "\n" not in error
    assert client.app.state.assay.jobs == {}  # refused before any work


def test_synthetic_release_without_the_tables_columns_is_refused(client):
    release = make_synthetic(300, 2).drop(columns=["region", "income"])
    ids = _synthetic_uploads(client, release=release.to_csv(index=False).encode())
    response = client.post("/api/audit", json={**ids, "target": "approved",
                                               "protected": ["sex"], "models": 4})
    assert response.status_code == 400
    assert response.json()["error"] == ("the synthetic release 'release' must have every column "
                                        "of the table 'loans'. Got it without income, region.")
    holdout = make_synthetic(300, 7).drop(columns=["sex"])
    ids = _synthetic_uploads(client, holdout=holdout.to_csv(index=False).encode())
    response = client.post("/api/audit", json={**ids, "target": "approved",
                                               "protected": ["sex"], "models": 4})
    assert response.status_code == 400
    assert "synthetic release's holdout 'holdout'" in response.json()["error"]
    assert "without sex." in response.json()["error"]


def test_synthetic_options_are_checked_as_assay_audit_checks_them(tmp_path):
    """A server default the section refuses fails the request, not the job."""
    app = create_app(tmp_path, defaults={**_FAST, "synthetic": {"n_cols": 99}})
    with TestClient(app, base_url=BASE) as c:
        ids = _synthetic_uploads(c)
        response = c.post("/api/audit", json={**ids, "target": "approved",
                                              "protected": ["sex"], "models": 4})
        assert response.status_code == 400
        assert "n_cols must be at most" in response.json()["error"]


def test_uploads_of_a_running_synthetic_audit_are_kept(tmp_path, fake_audit):
    app = create_app(tmp_path, defaults=_FAST, retention_s=3600)
    with TestClient(app, base_url=BASE) as c:
        ids = _synthetic_uploads(c)
        started = c.post("/api/audit", json={**ids, "target": "approved",
                                             "protected": ["sex"], "models": 4})
        assert started.status_code == 200
        assert fake_audit["started"].wait(20)
        state = c.app.state.assay
        state.sweep(now=time.time() + 7200)  # every upload is past its retention
        assert all((tmp_path / "uploads" / u).is_dir() for u in ids.values())
        c.delete(started.json()["status_url"])
        fake_audit["go"].set()


def test_synthetic_audit_end_to_end(tmp_path):
    app = create_app(tmp_path, defaults={**_FAST, "synthetic": {"n_attacks": 100}})
    with TestClient(app, base_url=BASE) as c:
        ids = _synthetic_uploads(c)
        started = c.post("/api/audit", json={**ids, "target": "approved",
                                             "protected": ["sex"], "models": 4})
        assert started.status_code == 200, started.json()
        status = wait_for_job(c, started.json()["status_url"], seconds=300)
        assert status["state"] == "done", status
        result = c.get(status["result_url"]).json()
        synthetic = result["sections"]["synthetic"]
        # The release is a copy of the table: its members are found.
        assert synthetic["metrics"]["membership_auc"]["value"] >= 0.9
        assert result["config"]["synthetic"]["n_attacks"] == 100
        assert 'id="section-synthetic"' in c.get(status["report_url"]).text


def test_synthetic_audit_with_its_generator_runs_the_shadow_attack(tmp_path):
    app = create_app(tmp_path, defaults={**_FAST, "synthetic": {"n_attacks": 100,
                                                                "n_shadow": 4}})
    with TestClient(app, base_url=BASE) as c:
        ids = _synthetic_uploads(c)
        started = c.post("/api/audit", json={**ids, "target": "approved", "protected": ["sex"],
                                             "models": 4, "synthetic_generator": " marginals"})
        assert started.status_code == 200, started.json()
        status = wait_for_job(c, started.json()["status_url"], seconds=300)
        assert status["state"] == "done", status
        result = c.get(status["result_url"]).json()
        synthetic = result["sections"]["synthetic"]
        shadow = synthetic["data"]["membership"]["shadow"]
        assert shadow["generator"] == "marginals" and shadow["n_shadow"] == 4
        assert synthetic["metrics"]["shadow_auc"]["value"] == shadow["auc"]["value"]
        assert result["config"]["synthetic"]["generator"] == "marginals"
        report = c.get(status["report_url"]).text
        assert 'id="synthetic-shadow"' in report and 'id="card-synth-shadow"' in report
