"""`sklearn:` learner paths: the package is checked before anything is imported."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from assay._validation import InvalidParameterError
from assay.learners import PACKAGES_ENV, get_learner, learner_packages

ZEN = "Beautiful is better than ugly"


def _assay(args, tmp_path, **env):
    """The CLI in a fresh interpreter: `this` is not cached there, so a print would show."""
    environ = {k: v for k, v in os.environ.items() if k != PACKAGES_ENV} | env
    return subprocess.run([sys.executable, "-m", "assay", *args], capture_output=True,
                          text=True, cwd=tmp_path, env=environ, timeout=120)


def _refused_in_one_line(done) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    assert ZEN not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def test_naming_this_on_the_command_line_runs_nothing(data_home, tmp_path):
    done = _assay(["release", "german", "--data-home", str(data_home),
                   "--learner", "sklearn:this.s"], tmp_path)
    line = _refused_in_one_line(done)
    assert "sklearn:this.s" in line and PACKAGES_ENV in line


def test_naming_this_in_audit_toml_runs_nothing(tmp_path):
    (tmp_path / "audit.toml").write_text(
        'data = "synthetic"\nmodels = 6\n[learner]\nname = "sklearn:this.s"\n')
    done = _assay(["audit", "--config", "audit.toml", "--out", str(tmp_path / "out"),
                   "--quiet"], tmp_path)
    assert "sklearn:this.s" in _refused_in_one_line(done)
    assert not (tmp_path / "out").exists()


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """A package holding a classifier, whose import leaves a marker file."""
    name = f"assay_test_plugin_{os.getpid()}"
    package = tmp_path / "site" / name
    package.mkdir(parents=True)
    marker = tmp_path / "imported"
    (package / "__init__.py").write_text(textwrap.dedent(f"""
        open({str(marker)!r}, "w").write("imported")
        from sklearn.linear_model import LogisticRegression

        class Classifier(LogisticRegression):
            pass
        """))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delenv(PACKAGES_ENV, raising=False)
    yield name, marker
    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        del sys.modules[key]


def test_a_plug_in_is_imported_only_once_named(plugin, monkeypatch):
    name, marker = plugin
    with pytest.raises(InvalidParameterError, match=f"list the package in {PACKAGES_ENV}"):
        get_learner(f"sklearn:{name}.Classifier")
    assert not marker.exists() and name not in sys.modules
    monkeypatch.setenv(PACKAGES_ENV, f"xgboost, {name}")
    assert learner_packages() == ("sklearn", "xgboost", name)
    learner = get_learner(f"sklearn:{name}.Classifier", C=0.5)
    assert marker.exists() and learner.estimator.C == 0.5


@pytest.mark.parametrize("spec,match", [
    ("sklearn:sklearn.tests.test_base.T", "scikit-learn module that holds estimators"),
    ("sklearn:sklearn.conftest.pytest_configure", "scikit-learn module that holds"),
    ("sklearn:sklearn.ensemble.HistGradientBoostingClassifier;import os", "<module>.<Class>"),
    ("sklearn:sklearn.ensemble.Hist Gradient", "<module>.<Class>"),
    ("sklearn:ѕklearn.ensemble.RandomForestClassifier", "<module>.<Class>"),  # Cyrillic s
    ("sklearn:sklearn.__init__.RandomForestClassifier", "<module>.<Class>"),
    ("sklearn:sklearn.multiclass._ConstantPredictor", "scikit-learn's public estimators"),
    ("sklearn:builtins.eval", "must name a class of sklearn"),
])
def test_paths_outside_estimator_modules_are_refused_before_import(spec, match):
    get_learner("sklearn:sklearn.tree.DecisionTreeClassifier")  # scikit-learn's own loaded
    before = set(sys.modules)
    with pytest.raises(InvalidParameterError, match=match) as info:
        get_learner(spec)
    assert "\n" not in str(info.value)
    assert set(sys.modules) == before  # nothing imported


def test_scikit_learn_paths_still_resolve():
    for spec in ("sklearn:sklearn.ensemble.HistGradientBoostingClassifier",
                 "sklearn:sklearn.ensemble._forest.RandomForestClassifier"):
        assert get_learner(spec).estimator.__class__.__name__ == spec.rsplit(".", 1)[1]


def test_package_list_is_checked(monkeypatch):
    monkeypatch.setenv(PACKAGES_ENV, "xgboost, os.path")
    with pytest.raises(InvalidParameterError, match=f"{PACKAGES_ENV} must list"):
        get_learner("sklearn:sklearn.tree.DecisionTreeClassifier")
