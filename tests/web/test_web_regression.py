"""The web app on a continuous target: the task detected from the target column (or chosen,
as ``--task`` chooses it), the upload's columns marked continuous, and the options a
regression target refuses answered with the CLI's one-line message, as a 400 before any
audit is queued."""

from __future__ import annotations

import warnings

import pytest

with warnings.catch_warnings():  # starlette prefers httpx2; httpx is what is installed
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from _helpers import wait_for_job
from assay.cli import main
from assay.data import SYNTHETIC_REGRESSION_TARGET, make_synthetic, make_synthetic_regression
from assay.web import create_app

# Options both tasks accept, so every refusal below is the regression target's own.
_FAST = {"privacy": {"attacks": ["loss"]},
         "groups": {"n_permutations": 0, "min_support": 20}}
BASE = "http://127.0.0.1:8000"
PREMIUM = SYNTHETIC_REGRESSION_TARGET


@pytest.fixture()
def client(tmp_path):
    app = create_app(tmp_path, max_upload_bytes=400_000, defaults=_FAST)
    with TestClient(app, base_url=BASE) as c:
        yield c


def _premium_csv(n_rows: int = 300) -> bytes:
    return make_synthetic_regression(n_rows, 2).to_csv(index=False).encode()


def _upload(client, payload: bytes, name: str = "premiums.csv") -> dict:
    response = client.post("/api/upload", files={"file": (name, payload, "text/csv")})
    assert response.status_code == 200, response.text
    return response.json()


def _audit(client, upload: dict, **body):
    request = {"upload_id": upload["upload_id"], "target": PREMIUM, "protected": ["sex"],
               "models": 4, **body}
    return client.post("/api/audit", json=request)


def _no_job_queued(client) -> bool:
    return client.app.state.assay.jobs == {}


def test_upload_marks_continuous_columns(client):
    columns = {c["name"]: c for c in _upload(client, _premium_csv())["columns"]}
    assert columns[PREMIUM]["continuous"] and columns["income"]["continuous"]
    # Classes and integers with few values are not: the tenure (0-30) stays classes.
    assert not columns["sex"]["continuous"] and not columns["tenure"]["continuous"]


@pytest.mark.parametrize("task", [None, "auto", "regression"])
def test_a_continuous_target_queues_a_regression_audit(client, task):
    upload = _upload(client, _premium_csv())
    response = _audit(client, upload, **({} if task is None else {"task": task}))
    assert response.status_code == 200, response.text
    assert response.json()["task"] == "regression"
    status = client.get(response.json()["status_url"]).json()
    assert status["task"] == "regression"


def test_a_class_target_stays_classification(client):
    upload = _upload(client, make_synthetic(300, 2).to_csv(index=False).encode())
    response = client.post("/api/audit", json={"upload_id": upload["upload_id"],
                                               "target": "approved", "protected": ["sex"],
                                               "models": 4})
    assert response.status_code == 200 and response.json()["task"] == "classification"


def test_an_integer_target_is_a_regression_audit_when_chosen(client):
    upload = _upload(client, _premium_csv())
    body = {"upload_id": upload["upload_id"], "target": "tenure", "protected": ["sex"],
            "models": 4}
    detected = client.post("/api/audit", json=body)
    chosen = client.post("/api/audit", json={**body, "task": "regression"})
    assert detected.json()["task"] == "classification"
    assert chosen.status_code == 200 and chosen.json()["task"] == "regression"


@pytest.mark.parametrize(("body", "message"), [
    ({"task": "classification"}, f"target column '{PREMIUM}' looks continuous"),
    ({"task": "regresion"}, "task (--task) must be one of 'auto', 'classification', "
                            "'regression'. Got 'regresion'."),
    ({"task": ["regression"]}, "task (--task) must be one of"),
    ({"decision_threshold": "high"}, "decision_threshold (--decision-threshold) must be a "
                                     "number"),
    ({"decision_threshold": True}, "decision_threshold (--decision-threshold) must be a "
                                   "number"),
])
def test_bad_task_requests_are_refused_before_queueing(client, body, message):
    upload = _upload(client, _premium_csv())
    response = _audit(client, upload, **body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert _no_job_queued(client)


def _cli_error(capsys, argv: list[str]) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1
    return lines[0].removeprefix("error: ")


def test_a_synthetic_release_is_audited_beside_a_regression_target(client):
    # The synthetic-release section audits a regression table too (its utility as a
    # regression figure), so the page's release and holdout go with a regression audit.
    upload = _upload(client, _premium_csv())
    release = _upload(client, _premium_csv(250), "release.csv")
    holdout = _upload(client, _premium_csv(200), "holdout.csv")
    response = _audit(client, upload, synthetic_upload_id=release["upload_id"],
                      synthetic_holdout_upload_id=holdout["upload_id"])
    assert response.status_code == 200, response.text
    assert response.json()["task"] == "regression"
    assert not _no_job_queued(client)


def test_a_threshold_on_classes_is_refused_with_the_clis_message(client, tmp_path, capsys):
    table = make_synthetic(300, 2).to_csv(index=False).encode()
    upload = _upload(client, table, "loans.csv")
    response = client.post("/api/audit", json={
        "upload_id": upload["upload_id"], "target": "approved", "protected": ["sex"],
        "models": 4, "decision_threshold": 0.5})
    assert response.status_code == 400 and _no_job_queued(client)
    path = tmp_path / "loans.csv"
    path.write_bytes(table)
    cli_error = _cli_error(capsys, [
        "audit", str(path), "--target", "approved", "--protected", "sex", "--models", "4",
        "--decision-threshold", "0.5", "--out", str(tmp_path / "out")])
    assert response.json()["error"] == cli_error


def test_a_server_default_a_regression_target_refuses_is_a_400(tmp_path):
    app = create_app(tmp_path, max_upload_bytes=400_000,
                     defaults={**_FAST, "privacy": {"attacks": ["loss"], "prior": 0.1}})
    with TestClient(app, base_url=BASE) as c:
        upload = _upload(c, _premium_csv())
        response = _audit(c, upload)
        assert response.status_code == 400 and _no_job_queued(c)
        assert "privacy option(s) prior must be left out for the regression target" in \
            response.json()["error"]


@pytest.mark.slow
def test_regression_audit_end_to_end(client):
    upload = _upload(client, _premium_csv(400))
    started = _audit(client, upload, protected=["sex", "region"], decision_threshold=1100)
    assert started.status_code == 200, started.text
    status = wait_for_job(client, started.json()["status_url"])
    assert status["state"] == "done", status
    result = client.get(status["result_url"]).json()
    assert result["data"]["task"] == "regression" and result["data"]["target"] == PREMIUM
    assert "task" not in result["config"]  # detected from the target, as `assay audit` does
    assert result["config"]["decision_threshold"] == 1100
    assert result["sections"]["fairness"]["status"] == "ok"
    assert result["sections"]["fairness"]["data"]["task"] == "regression"
    report = client.get(status["report_url"]).text
    assert 'id="section-privacy"' in report
