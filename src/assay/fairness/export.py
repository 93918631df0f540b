"""The chosen model, deployable without pickle, and its model card.

Models are written with skops (``skops.io``), which stores the object tree as data and
refuses, on load, every type it was not told to trust: the types a file needs are
recorded beside it (`export_model` returns them; the card lists them) and `load_model`
loads only files whose types are all on `assay.learners.model_file.allowed_types`, an exact list
(scikit-learn's estimators, numpy's and scipy's arrays, assay's mitigation estimators).
An ONNX copy is written too where skl2onnx is installed and the model converts (plain
scikit-learn models; assay's group-aware estimators do not).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assay._validation import InvalidParameterError
from assay.fairness.metrics import format_estimate as _fmt

__all__ = ["export_model", "load_model", "model_card"]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export_model(model: Any, path: str | Path, *, onnx: bool = True,
                 n_features: int | None = None) -> dict[str, Any]:
    """Write `model` with skops (and ONNX where it converts); describe what was written.

    Parameters
    ----------
    model : fitted estimator
    path : path-like
        The ``.skops`` file (its folder is created).
    onnx : bool, default=True
        Also try ``<path>.onnx`` through skl2onnx.
    n_features : int, optional
        Width of the input, for the ONNX signature.

    Returns
    -------
    dict
        ``path``, ``format``, ``sha256``, ``trusted_types`` (what `load_model` must
        trust) and ``onnx`` (a path, or why there is none).
    """
    if model is None:
        raise InvalidParameterError("model must be a fitted estimator. Got None (a model "
                                    "you trained yourself is not exported by assay).")
    import skops.io as sio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sio.dump(model, path)
    trusted = sorted(sio.get_untrusted_types(file=path))
    info: dict[str, Any] = {"path": str(path), "format": "skops", "sha256": _sha256(path),
                            "trusted_types": trusted, "onnx": None}
    if onnx:
        info["onnx"] = _onnx(model, path.with_suffix(".onnx"), n_features)
    return info


def _onnx(model: Any, path: Path, n_features: int | None) -> str:
    try:
        from skl2onnx import to_onnx
    except ImportError:
        return "not written: skl2onnx is not installed"
    if type(model).__module__.startswith("assay.") or n_features is None:
        return ("not written: the model decides by protected group, which ONNX's "
                "scikit-learn converters do not know")
    try:
        import numpy as np

        onx = to_onnx(model, np.zeros((1, n_features), dtype=np.float32))
    except Exception as exc:  # noqa: BLE001 - any converter failure is reported, not raised
        return f"not written: {type(exc).__name__}: {exc}"
    path.write_bytes(onx.SerializeToString())
    return str(path)


def load_model(path: str | Path, trusted: Sequence[str] | None = None) -> Any:
    """Load a model written by `export_model`.

    Parameters
    ----------
    path : path-like
    trusted : sequence of str, optional
        Exact type names the caller accepts (e.g. an export's ``trusted_types``): the
        types skops does not trust by itself must all be among them. Default: the
        exact allow-list `assay.learners.model_file.allowed_types`.

    Raises
    ------
    InvalidParameterError
        The file is missing, is not a skops file, or names a type outside the list
        (nothing in it is imported or built then).
    """
    from assay.learners.model_file import load_model_file

    return load_model_file(path, trusted=trusted, what="model file")


def model_card(candidate: Any, front: Any, *, dataset: dict[str, Any],
               export: dict[str, Any] | None = None,
               inputs: str = "") -> str:
    """A short Markdown model card.

    Parameters
    ----------
    candidate : Candidate
        The model described.
    front : FrontResult
        Its front (the card says where the model sits and what was rejected).
    dataset : dict
        ``name``, ``fingerprint``, ``target``, ``protected``, ``n_rows``.
    export : dict, optional
        What `export_model` returned.
    inputs : str
        What the model reads (features, scores, protected columns).
    """
    base = front.baseline_candidate
    lines = [
        f"# Model card: {candidate.name}",
        "",
        f"- method: {candidate.method}; parameters: "
        + (", ".join(f"{k}={v}" for k, v in candidate.params.items()) or "none"),
        f"- data: {dataset.get('name')} (fingerprint `{dataset.get('fingerprint')}`), "
        f"target `{dataset.get('target')}`, protected {', '.join(dataset.get('protected', []))}",
        f"- rows: {front.rows.get('train')} to fit, {front.rows.get('calibration')} to "
        f"calibrate, {front.rows.get('test')} held out to score the candidates and choose"
        + (f", {front.rows['confirmation']} held out from the choice to confirm it"
           if front.rows.get("confirmation") else ""),
    ]
    if inputs:
        lines.append(f"- inputs: {inputs}")
    lines += ["", "## Held-out figures (95 % intervals)", "",
              "| figure | this model | unmitigated baseline |", "| --- | --- | --- |",
              f"| accuracy | {_fmt(candidate.accuracy)} | {_fmt(base.accuracy)} |",
              f"| balanced accuracy | {_fmt(candidate.balanced_accuracy)} | "
              f"{_fmt(base.balanced_accuracy)} |"]
    for name, est in candidate.gaps.items():
        lines.append(f"| {name} gap (largest over attributes and intersections) | "
                     f"{_fmt(est)} | {_fmt(base.gaps[name])} |")
    place = ("on the front (no other candidate has both a higher balanced accuracy and a "
             "smaller gap)" if candidate.on_front else "behind the front")
    chosen = ""
    if candidate.index == front.chosen:
        chosen = f" It is the chosen model, a confirmed fix. {front.verdict_text()}"
    elif candidate.index == front.preferred and candidate.index != front.baseline:
        chosen = (f" It was preferred on the held-out rows ({front.note}) but is not a fix. "
                  f"{front.verdict_text()}")
    confirmed = front.confirmation if candidate.index == front.preferred else {}
    if "candidate" in confirmed:
        mine, theirs = confirmed["candidate"], confirmed["baseline"]
        lines += ["", f"## Confirmed on {front.rows['confirmation']} rows that took no part in "
                  "the choice (95 % intervals)", "",
                  "| figure | this model | unmitigated baseline |", "| --- | --- | --- |",
                  f"| accuracy | {_fmt(mine.accuracy)} | {_fmt(theirs.accuracy)} |",
                  f"| balanced accuracy | {_fmt(mine.balanced_accuracy)} | "
                  f"{_fmt(theirs.balanced_accuracy)} |"]
        for name, est in mine.gaps.items():
            lines.append(f"| {name} gap | {_fmt(est)} | {_fmt(theirs.gaps[name])} |")
    lines += ["", "## Its place on the front", "",
              f"Candidate {candidate.index} of {len(front.candidates)}, {place}, for the "
              f"{front.constraint} constraint.{chosen}", ""]
    rejected = front.rejected
    lines += ["## Rejected candidates", ""]
    if rejected:
        lines += [f"- {c.index}: {c.name}: {c.rejected}" for c in rejected]
    else:
        lines.append("- none")
    if export is not None:
        lines += ["", "## Export", "",
                  f"- file: `{Path(export['path']).name}` ({export['format']}, sha256 "
                  f"`{export['sha256']}`)",
                  "- load with `skops.io.load(path, trusted=[...])` trusting exactly: "
                  + ", ".join(f"`{t}`" for t in export["trusted_types"]),
                  f"- ONNX: {export.get('onnx')}"]
    return "\n".join(lines) + "\n"
