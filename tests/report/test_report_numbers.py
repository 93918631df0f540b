"""Every figure of report.html read back against result.json: one estimate, one interval
and one unit per figure, wherever it appears (cards, plain words, tables)."""

from __future__ import annotations

import html as html_lib
import json
import re
from collections import defaultdict

import pytest

from assay.audit import AuditConfig, run_audit
from assay.data import Dataset, make_synthetic
from assay.report.result import format_points, format_rate, format_value

_NUM = r"[-+]?\d[\d,]*(?:\.\d+)?"
#: "X [L, H]" with its unit: "%" on every number, " points" after the value, or none.
_TRIPLE = re.compile(rf"({_NUM})( %| points)?(?: of [\d,]+)?\s*\[({_NUM})( %)?, ({_NUM})( %)?\]")
#: Kind -> how one number of that kind is written (the shared formatters).
_WRITE = {"rate": format_rate, "gap": format_points, "score": format_value,
          "count": lambda v: f"{v:,.0f}"}


def visible_text(page: str) -> str:
    """The words a reader sees: no tags, scripts, styles, SVG figures or the config dump."""
    page = re.sub(r"<(script|style|svg|pre)\b.*?</\1>", " ", page, flags=re.S | re.I)
    page = re.sub(r"<[^>]+>", " ", page)
    return re.sub(r"\s+", " ", html_lib.unescape(page))


def shown_figures(text: str) -> list[tuple[str, str, str, str]]:
    """(kind, value, low, high) of every "X [L, H]" in `text`, numbers as written."""
    out = []
    for m in _TRIPLE.finditer(text):
        value, unit, low, high = m.group(1), m.group(2), m.group(3), m.group(5)
        if unit == " %":
            kind, value, low, high = "rate", value + " %", low + " %", high + " %"
        elif unit == " points":
            kind = "gap"
        elif re.fullmatch(r"-?\d\.\d{3}", value):
            kind = "score"
        elif re.fullmatch(r"[-+]?\d+\.\d", value) and "." in low:
            kind = "gap"  # a table column headed "(points)"
        else:
            kind = "count"
        out.append((kind, value, low, high))
    return out


def stored_estimates(payload) -> list[tuple[tuple, float, float, float]]:
    """(path, value, low, high) of every estimate with a finite interval in result.json."""
    found = []

    def finite(*xs):
        return all(isinstance(x, int | float) and not isinstance(x, bool) for x in xs)

    def walk(node, path):
        if isinstance(node, dict):
            v, lo, hi = node.get("value"), node.get("ci_low"), node.get("ci_high")
            if finite(v, lo, hi):
                found.append((path, float(v), float(lo), float(hi)))
            for k, child in node.items():
                walk(child, (*path, k))
        elif isinstance(node, list):
            if len(node) == 3 and finite(*node) and node[1] <= node[0] <= node[2]:
                found.append((path, *map(float, node)))  # release evidence: (value, lo, hi)
            for i, child in enumerate(node):
                walk(child, (*path, i))

    walk(payload, ())
    return found


def number_problems(page: str, payload) -> list[str]:
    """Why the report's figures do not read back against `payload` (empty: they do)."""
    text = visible_text(page)
    index: dict[tuple, list] = defaultdict(list)
    for path, v, lo, hi in stored_estimates(payload):
        for kind, write in _WRITE.items():
            index[(kind, write(v), write(lo), write(hi))].append((path, v, lo, hi))
        signed = [format_points(x, signed=True) for x in (v, lo, hi)]  # a change
        index[("gap", *signed)].append((path, v, lo, hi))
    problems = []
    if re.search(r"\bnan\b", text, re.I):
        problems.append("'nan' in the report's words")
    kinds_of = defaultdict(set)
    intervals = defaultdict(dict)
    for fig in shown_figures(text):
        matches = index.get(fig)
        if not matches:
            problems.append(f"{fig[1]} [{fig[2]}, {fig[3]}] ({fig[0]}) is no estimate of the "
                            f"result")
            continue
        for path, v, lo, hi in matches:
            kinds_of[(v, lo, hi)].add((fig[0], path))
            intervals[(fig[0], fig[1])][(fig[2], fig[3])] = (path, v)
    for shown in kinds_of.values():
        if len({kind for kind, _ in shown}) > 1:
            paths = sorted({"/".join(map(str, p)) for _, p in shown})
            problems.append(f"{paths[0]} is shown in {sorted({k for k, _ in shown})}")
    for (kind, value), shown in intervals.items():
        if kind == "rate":
            continue  # a group's rates of 0 or 100 % coincide, each with its own interval
        # The same value of one stored object (a gap's difference and its pair) shown with
        # two intervals: one figure, two intervals.
        sources = list(shown.values())
        for i, (path_a, va) in enumerate(sources):
            for path_b, vb in sources[i + 1:]:
                if path_a[:-1] == path_b[:-1] and va == vb:
                    problems.append(f"{value} ({kind}) shown with two intervals "
                                    f"({'/'.join(map(str, path_a))}, {path_b[-1]})")
    return problems


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    out = tmp_path_factory.mktemp("numbers")
    frame = make_synthetic(1200, 1)
    dataset = Dataset.from_frame(frame, "approved", ["sex", "region"], name="loans")
    config = AuditConfig.from_mapping({
        "data": "synthetic", "models": 4, "out": str(out),
        "privacy": {"attacks": ["loss", "rmia"], "noise_grid": [1.0, 4.0]},
        "attribute": {"sensitive": "region"}, "release": {"enabled": True},
        "groups": {"n_permutations": 0, "min_support": 20}})
    result = run_audit(config, dataset=dataset, progress=False)
    return (out / "report.html").read_text(encoding="utf-8"), \
        json.loads((out / "result.json").read_text(encoding="utf-8")), result


def test_sections_ran(audited):
    _, _, result = audited
    for name in ("fairness", "multiplicity", "privacy", "attribute", "release"):
        assert result.sections[name].status == "ok", (name, result.sections[name].message)


def test_every_figure_reads_back(audited):
    page, payload, _ = audited
    figures = shown_figures(visible_text(page))
    assert {"rate", "gap", "score"} <= {f[0] for f in figures}  # the parser sees them all
    assert number_problems(page, payload) == []


def test_checker_catches_two_intervals_and_two_units(audited):
    """The old report's faults, put back into this one, are found."""
    page, payload, result = audited
    gap = result.sections["fairness"].data.report.worst("eo")
    d, p = gap.difference, gap.pair
    shown = f"{format_points(d.value)} points [{format_points(d.ci_low)}, " \
            f"{format_points(d.ci_high)}]"
    assert shown in visible_text(page)
    if (format_points(p.ci_low), format_points(p.ci_high)) != \
            (format_points(d.ci_low), format_points(d.ci_high)):
        pair = f"{format_points(p.value)} points [{format_points(p.ci_low)}, " \
               f"{format_points(p.ci_high)}]"
        assert any("two intervals" in x for x in
                   number_problems(page + f"<p>{pair}</p>", payload))
    fraction = f"{format_value(d.value)} [{format_value(d.ci_low)}, {format_value(d.ci_high)}]"
    assert any("is shown in" in x for x in number_problems(page + f"<p>{fraction}</p>",
                                                           payload))
    assert number_problems(page + "<p>gap nan points</p>", payload)
