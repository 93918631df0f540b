"""The web app's API: upload checks, audit requests, status and the report."""

from __future__ import annotations

import time
import warnings

import pytest

with warnings.catch_warnings():  # starlette prefers httpx2; httpx is what is installed
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from assay.data import make_synthetic
from assay.web import create_app

_FAST = {"privacy": {"attacks": ["loss"], "noise_grid": []},
         "groups": {"n_permutations": 0, "min_support": 20}}


@pytest.fixture()
def client(tmp_path):
    app = create_app(tmp_path, max_upload_bytes=200_000, defaults=_FAST)
    with TestClient(app) as c:
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
    ({"target": "income", "protected": ["sex"]}, "looks continuous"),
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
    url = started.json()["status_url"]
    deadline = time.monotonic() + 180
    while True:
        status = client.get(url).json()
        if status["state"] in ("done", "error") or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert status["state"] == "done", status
    assert status["fraction"] == 1.0 and status["summary"]
    report = client.get(status["report_url"])
    assert report.status_code == 200 and 'id="section-privacy"' in report.text
    result = client.get(status["result_url"]).json()
    assert result["data"]["protected"] == ["sex", "region"]
    assert result["data"]["name"] == "loans"


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
