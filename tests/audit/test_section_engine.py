"""The attribute and distribution audits fit through the audit's engine settings: on the
given Dask scheduler (no cluster of their own) and, over the memory budget, with their
probabilities on disk, as the membership audit does (issue 23)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assay.cli import main
from assay.data import load


def _probs_files(folder):
    return sorted(folder.rglob("probs.npy"))


def test_over_the_budget_the_probabilities_go_to_disk(tmp_path):
    from assay.privacy.attribute.inference import attribute_inference
    from assay.privacy.distribution.inference import distribution_inference, property_mask

    d = load("synthetic", n_rows=400)
    kwargs = {"n_models": 4, "attacks": ("loss", "model"), "n_bootstrap": 10,
              "n_permutations": 0}
    memory = attribute_inference(d, "region", **kwargs)
    disk = attribute_inference(d, "region", memory_budget=1e-9,
                               cache_dir=tmp_path / "attr", **kwargs)
    assert len(_probs_files(tmp_path / "attr")) == 1
    # The same figures from the file as from memory.
    assert disk.to_dict()["attacks"] == memory.to_dict()["attacks"]
    # Within the budget nothing is written beside the chunk cache.
    attribute_inference(d, "region", memory_budget=100.0, cache_dir=tmp_path / "within",
                        **kwargs)
    assert _probs_files(tmp_path / "within") == []

    mask = property_mask(d, "sex=F")
    args = (d.X, d.y, mask)
    dist = {"ratios": (0.2, 0.8), "n_models": 4, "n_query": 50}
    memory = distribution_inference(*args, **dist)
    disk = distribution_inference(*args, memory_budget=1e-9, cache_dir=tmp_path / "dist",
                                  **dist)
    assert len(_probs_files(tmp_path / "dist")) == 1
    assert disk.to_dict()["attacks"] == memory.to_dict()["attacks"]


@pytest.mark.parametrize("argv, message", [
    (["attribute", "synthetic", "--sensitive", "region", "--memory-budget", "-1"],
     "--memory-budget must be"),
    (["attribute", "synthetic", "--sensitive", "region", "--scheduler", "tcp://127.0.0.1:9"],
     "--scheduler must be None unless --backend is 'dask'"),
    (["attribute", "synthetic", "--sensitive", "region", "--backend", "spark"],
     "--backend must be"),
    (["distribution", "synthetic", "--property", "sex=F", "--memory-budget", "0"],
     "--memory-budget must be"),
    (["distribution", "synthetic", "--property", "sex=F", "--scheduler", "tcp://127.0.0.1:9"],
     "--scheduler must be None unless --backend is 'dask'"),
])
def test_engine_flags_are_one_line_before_any_work(argv, message, capsys, monkeypatch):
    import assay.engine

    def no_fit(*args, **kwargs):
        raise AssertionError("fitted before the flags were checked")

    monkeypatch.setattr(assay.engine, "fit_population", no_fit)
    code = main([*argv, "--no-progress"] if argv[0] == "distribution" else argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1, err


@pytest.fixture(scope="module")
def cluster():
    """One in-process worker: its scheduler's task log says what ran there."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as c:
        yield c


def _fits_on(cluster) -> int:
    """Model chunks the cluster has been given to fit (`population._fit_one` tasks: the
    scheduler's prefix drops the underscore)."""
    prefix = cluster.scheduler.task_prefixes.get("fit_one")
    return 0 if prefix is None else sum(prefix.state_counts.values())


@pytest.fixture
def no_local_cluster(monkeypatch):
    """Starting a cluster of one's own fails the test."""
    import assay.engine.cluster

    def refuse(*args, **kwargs):
        raise AssertionError("started a local cluster instead of using --scheduler")

    monkeypatch.setattr(assay.engine.cluster, "_local_cluster", refuse)


@pytest.mark.parametrize("argv", [
    ["attribute", "synthetic", "--sensitive", "region", "--models", "4",
     "--attacks", "loss,model"],
    ["distribution", "synthetic", "--property", "sex=F", "--ratios", "0.2,0.8",
     "--models", "4", "--no-progress"],
])
def test_commands_fit_on_the_given_scheduler(argv, cluster, no_local_cluster, tmp_path,
                                            monkeypatch):
    import assay.engine

    calls = []
    fit = assay.engine.fit_population

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return fit(*args, **kwargs)

    monkeypatch.setattr(assay.engine, "fit_population", spy)
    before = _fits_on(cluster)
    assert main([*argv, "--json", str(tmp_path / "local.json")]) == 0
    assert _fits_on(cluster) == before
    calls.clear()
    assert main([*argv, "--backend", "dask", "--scheduler", cluster.scheduler_address,
                 "--memory-budget", "0.5", "--json", str(tmp_path / "dask.json")]) == 0
    assert _fits_on(cluster) > before
    # Every fit of the one-section audit: on that cluster, within --memory-budget.
    assert calls
    for kwargs in calls:
        assert kwargs["scheduler_address"] == cluster.scheduler_address
        assert kwargs["memory_budget"] == 0.5 and kwargs["backend"] == "dask"
    local, remote = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("local", "dask"))
    # --json holds the section's payload under its name, as result.json does.
    payloads = [p[argv[0]] for p in (local, remote)]
    payloads = [p["result"] if argv[0] == "attribute" else p for p in payloads]
    assert payloads[0]["attacks"] and payloads[1]["attacks"] == payloads[0]["attacks"]


def test_audit_sections_fit_on_the_audit_cluster_and_budget(cluster, no_local_cluster,
                                                            tmp_path, monkeypatch):
    import assay.engine
    from assay.audit import AuditConfig, run_audit

    calls = []
    fit = assay.engine.fit_population

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return fit(*args, **kwargs)

    monkeypatch.setattr(assay.engine, "fit_population", spy)
    config = AuditConfig.from_mapping({
        "data": "synthetic", "n_rows": 400, "models": 4, "out": str(tmp_path / "out"),
        "backend": "dask", "scheduler_address": cluster.scheduler_address,
        "memory_budget": 0.5,
        "privacy": {"attacks": ["loss"], "noise_grid": []},
        "attribute": {"sensitive": "region", "models": 4, "attacks": ["loss", "model"]},
        "distribution": {"property": "sex=F", "ratios": [0.2, 0.8], "models": 4,
                         "n_query": 50}})
    before = _fits_on(cluster)
    result = run_audit(config, progress=False)
    for name in ("attribute", "distribution"):
        assert result.sections[name].status == "ok", result.sections[name].message
    assert _fits_on(cluster) > before
    # The audit's population, the attribute models (on altered copies) and the
    # distribution models: each fit with the audit's scheduler and budget.
    assert len(calls) >= 3
    for kwargs in calls:
        assert kwargs["scheduler_address"] == cluster.scheduler_address
        assert kwargs["memory_budget"] == 0.5 and kwargs["backend"] == "dask"
    assert np.isfinite(result.sections["distribution"].metrics["accuracy"].value)
