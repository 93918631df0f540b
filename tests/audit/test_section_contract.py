"""A section written here, outside the package, plugs into config, CLI, result, report and gate."""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

import assay
from assay._validation import InvalidParameterError, check_scalar
from assay.cli import main
from assay.report.result import AuditResult, Metric, SectionResult
from assay.section import Card, Flag, Options, Page, register_section, unregister_section

_TOML = """data = "synthetic"
n_rows = 300
models = 4
[groups]
n_permutations = 0
min_support = 20
[privacy]
attacks = ["loss"]
noise_grid = []
[echo]
scale = 2.0
"""


@dataclass(frozen=True)
class EchoOptions(Options):
    scale: float = 1.0
    label: str = "rows"

    def __post_init__(self) -> None:
        check_scalar(self.scale, "echo.scale", low=0, low_open=True)


@dataclass
class EchoPayload:
    rows: int
    scaled: float

    def to_dict(self) -> dict:
        return {"rows": self.rows, "scaled": self.scaled}

    @classmethod
    def from_dict(cls, d: dict) -> EchoPayload:
        return cls(rows=int(d["rows"]), scaled=float(d["scaled"]))


class EchoSection:
    """Counts the rows of the table, scaled; refuses a scale above 100 before training."""

    name = "echo"
    title = "Echo: the table's size"
    options_type = EchoOptions
    flags = (Flag("scale", "Multiplier of the row count.", kind="float"),)
    payload_type = EchoPayload
    payload_schema = {"type": "object", "required": ["rows", "scaled"],
                      "properties": {"rows": {"type": "integer", "minimum": 1},
                                     "scaled": {"type": "number"}}}

    def __init__(self) -> None:
        self.checked = 0

    def check(self, context, options: EchoOptions) -> None:
        self.checked += 1
        assert context.population is None  # checks run before any training
        if options.scale > 100:
            raise InvalidParameterError(f"echo.scale must be at most 100. Got {options.scale}.")

    def applies(self, context, options) -> bool:
        return True

    def run(self, context, options: EchoOptions) -> SectionResult:
        rows = int(context.population.n_rows)
        assert context.target.probs.shape == (rows, 2)  # every section sees the target
        return SectionResult(
            name=self.name, title=self.title, summary=[f"The table has {rows} {options.label}."],
            metrics={"scaled": Metric(rows * options.scale, label="scaled rows")},
            data=EchoPayload(rows=rows, scaled=rows * options.scale))

    def page(self, section: SectionResult, result: AuditResult) -> Page:
        from assay.report.plots import figure, svg_text

        fig, ax = figure(3, 2)
        ax.bar([0], [section.data.scaled])
        return Page(template='<p id="echo-rows">{{ view.rows }} rows</p>'
                             '<figure id="fig-echo">{{ figures.bar }}</figure>',
                    view={"rows": section.data.rows}, figures={"bar": svg_text(fig)},
                    cards=[Card("scaled rows", f"{section.data.scaled:g}", id="card-echo")])


@pytest.fixture()
def echo():
    section = register_section(EchoSection())
    yield section
    unregister_section(section.name)


def _run(tmp_path, *flags):
    config = tmp_path / "audit.toml"
    config.write_text(_TOML)
    out = tmp_path / "out"
    code = main(["audit", "--config", str(config), "--out", str(out), "--quiet", *flags])
    return code, out


def test_plugin_section_end_to_end(tmp_path, echo, capsys):
    code, out = _run(tmp_path, "--scale", "3")
    assert code == 0, capsys.readouterr().err
    assert echo.checked == 1
    payload = json.loads((out / "result.json").read_text())
    assert payload["config"]["echo"] == {"scale": 3.0, "label": "rows"}  # flag beat the file
    assert payload["sections"]["echo"]["data"] == {"rows": 300, "scaled": 900.0}
    result = AuditResult.from_json(out / "result.json")
    assert isinstance(result.sections["echo"].data, EchoPayload)  # typed again on read
    html = (out / "report.html").read_text()
    assert '<p id="echo-rows">300 rows</p>' in html and 'id="card-echo"' in html
    assert '<figure id="fig-echo"><svg' in html
    assert "The table has 300 rows." in capsys.readouterr().out
    assert main(["gate", str(out / "result.json"), "--max", "echo.scaled=1000"]) == 0
    assert main(["gate", str(out / "result.json"), "--max", "echo.scaled=10"]) == 1


def test_plugin_options_are_checked_before_training(tmp_path, echo, capsys):
    code, out = _run(tmp_path, "--scale", "500")
    assert code == 2 and "echo.scale must be at most 100" in capsys.readouterr().err
    assert not (out / "cache").exists()  # nothing was trained
    code, out = _run(tmp_path, "--scale", "-1")
    assert code == 2 and "echo.scale must be a number in (0, inf)" in capsys.readouterr().err
    config = tmp_path / "bad.toml"
    config.write_text(_TOML + "colour = 1\n")
    assert main(["audit", "--config", str(config), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "[echo] has unknown option(s) 'colour'" in err and "scale, label" in err


def test_payload_is_validated_against_the_section_schema(tmp_path, echo):
    code, out = _run(tmp_path)
    assert code == 0
    payload = json.loads((out / "result.json").read_text())
    payload["sections"]["echo"]["data"]["rows"] = "three hundred"
    from assay._validation import DataError

    with pytest.raises(DataError, match="sections/echo/data/rows"):
        AuditResult.from_dict(payload, "edited.json")


def _imports(module: Path) -> set[str]:
    tree = ast.parse(module.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


_CORE = ("audit", "section", "report", "engine", "groups", "data", "learners")
_ROOT = Path(assay.__file__).parent
_CORE_FILES = sorted(str(p.relative_to(_ROOT))
                     for package in _CORE for p in (_ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("module", _CORE_FILES)
def test_core_imports_no_pillar(module):
    path = Path(assay.__file__).parent / module
    pillars = ("assay.privacy", "assay.fairness", "assay.multiplicity", "assay.synth")
    assert not [m for m in _imports(path) if m.startswith(pillars)]
