"""One Dask cluster per command: `assay mia --backend dask` fits and attacks on it, with
the same result as the local run; scheduler addresses are checked before any training."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("distributed")

from assay._validation import InvalidParameterError  # noqa: E402
from assay.audit import AuditConfig  # noqa: E402
from assay.cli import main  # noqa: E402
from assay.engine.cluster import check_scheduler, shared_cluster  # noqa: E402


def test_a_scheduler_address_needs_the_dask_backend_and_a_plain_address():
    check_scheduler("dask", "tcp://10.0.0.5:8786")
    check_scheduler("batched", None)
    with pytest.raises(InvalidParameterError, match="unless backend is 'dask'"):
        check_scheduler("batched", "tcp://10.0.0.5:8786")
    for bad in ("", "tcp://a b", 5):
        with pytest.raises(InvalidParameterError, match="scheduler address"):
            check_scheduler("dask", bad)
    with pytest.raises(InvalidParameterError, match="unless backend is 'dask'"):
        AuditConfig(data="synthetic", scheduler_address="tcp://10.0.0.5:8786")
    assert AuditConfig(data="synthetic", backend="dask",
                       scheduler_address="tcp://10.0.0.5:8786").scheduler_address


def test_other_backends_get_no_cluster():
    with shared_cluster("batched", None) as address:
        assert address is None


def _no_fit(*args, **kwargs):
    raise AssertionError("trained before the address was checked")


def test_an_unreachable_scheduler_is_one_line_before_any_training(monkeypatch, capsys,
                                                                  tmp_path):
    import assay.engine
    import assay.engine.cluster

    monkeypatch.setattr(assay.engine.cluster, "CONNECT_TIMEOUT", 1)
    monkeypatch.setattr(assay.engine, "fit_population", _no_fit)
    code = main(["mia", "synthetic", "--models", "6", "--backend", "dask", "--scheduler",
                 "tcp://127.0.0.1:9", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith("error: --scheduler must be the address of a running Dask")
    code = main(["mia", "synthetic", "--scheduler", "tcp://127.0.0.1:9", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--scheduler must be None unless --backend is 'dask'" in err


def test_a_scheduler_without_workers_is_one_line_before_any_training(monkeypatch, capsys):
    """Tasks sent there would wait forever: refused once no worker joins in time."""
    from distributed import LocalCluster

    import assay.engine
    import assay.engine.cluster

    monkeypatch.setattr(assay.engine.cluster, "CONNECT_TIMEOUT", 1)
    monkeypatch.setattr(assay.engine, "fit_population", _no_fit)
    with LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as empty:
        code = main(["mia", "synthetic", "--models", "6", "--backend", "dask",
                     "--scheduler", empty.scheduler_address, "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "--scheduler must be the address of a Dask scheduler with at least one worker" \
        in err and "no worker joined within 1 s" in err


@pytest.mark.slow  # a local cluster of two worker processes, twice (~20 s)
def test_mia_on_dask_equals_the_local_run(tmp_path):
    from distributed import LocalCluster

    args = ["mia", "synthetic", "--models", "8", "--permutations", "50", "--no-progress"]
    assert main([*args, "--json", str(tmp_path / "local.json")]) == 0
    # A cluster the command only connects to (a scheduler address), and one it starts.
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster:
        assert main([*args, "--backend", "dask", "--scheduler", cluster.scheduler_address,
                     "--json", str(tmp_path / "remote.json")]) == 0
    assert main([*args, "--backend", "dask", "--json", str(tmp_path / "own.json")]) == 0
    local = json.loads((tmp_path / "local.json").read_text())
    for name in ("remote.json", "own.json"):
        other = json.loads((tmp_path / name).read_text())
        assert other["privacy"] == local["privacy"]
        for key in ("train_accuracy", "test_accuracy"):
            assert other["population"][key] == local["population"][key]
