"""What `assay synth` and `assay synth-dp` share: the input-file check and the risk table."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from assay._validation import DataError


def check_table(path: Path, name: str) -> None:
    """A readable .csv / .csv.gz / .parquet file, checked before anything is read."""
    text = "".join(path.suffixes[-2:]).lower()
    if not path.exists():
        raise DataError(f"{name} must be an existing file. Got {path} (no such file).")
    if path.is_dir():
        raise DataError(f"{name} must be a .csv or .parquet file. Got the folder {path}.")
    if not (path.suffix.lower() in (".csv", ".parquet", ".pq") or text.endswith(".csv.gz")):
        raise DataError(f"{name} must be a .csv, .csv.gz or .parquet file. Got {path}.")


@contextmanager
def shadow_progress(enabled: bool, generator: str | None) -> Iterator:
    """A progress bar over the shadow attack's generator fits, and its ``on_world``."""
    from assay.engine.fit import progress_bar

    with progress_bar(enabled) as bar:
        task = bar.add_task(f"shadow fits of {generator}", total=None)

        def on_fit(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield on_fit


def fmt(e) -> str:
    if e is None:
        return "not estimable"
    if e.value != e.value:  # NaN
        return "not measurable"
    return f"{e.value:.3f} [{e.ci_low:.3f}, {e.ci_high:.3f}]"


def risk_table(payload):
    from rich.table import Table

    table = Table(title="Synthetic release: risk beyond the holdout control "
                        "(anonymeter's definitions; 95 % intervals)")
    for column in ("attack", "risk", "attack success", "control success", "attacks"):
        table.add_column(column)
    so = payload.singling_out
    rows = [(f"singling out, univariate ({so.n_queries['univariate']} predicates)",
             so.univariate),
            (f"singling out, multivariate ({so.n_cols} columns, "
             f"{so.n_queries['multivariate']} predicates)", so.multivariate),
            ("linkability (" + " | ".join(",".join(p) for p in payload.linkability.aux_columns)
             + ")", payload.linkability.figures)]
    if payload.linkability.with_ties is not None:
        rows.append(("linkability, every tied nearest row counted",
                     payload.linkability.with_ties))
    rows += [(f"inference of {s.secret}", s.figures) for s in payload.inference.secrets]
    for name, f in rows:
        table.add_row(name, fmt(f.risk), fmt(f.attack), fmt(f.control), str(f.n_attacks))
    return table
