"""Membership-inference attacks on a population of models, and their audit figures.

Every model of a :class:`~assay.population.Population` takes its turn as the *target*;
the other models, whose training sets are known, are its *reference* models
(leave-one-model-out). One population of K models therefore yields K attacked targets,
and no target's own outputs ever enter its reference statistics. All scores point the
same way: higher means "more likely a member".

A model trained on exactly the complement of the target's rows (its partner in a
balanced plan) is left out of the target's references too: the two fits share one
split of the data, so their outputs are coupled (for a linear model, nearly
φ_target + φ_partner ≈ const), and keeping the partner biases online LiRA upwards
(measured: AUC 0.58 instead of 0.51 for a heavily regularised logistic regression).
A balanced plan of K models thus gives K−2 references per target, (K−2)/2 per side;
LiRA needs K ≥ 6.

Attacks
-------
``loss``
    Yeom et al.: the target's log-probability of the true label (minus the loss).
``lira`` / ``lira_offline``
    Carlini et al. (2022) on the scaled confidence φ = log p_y − log Σ_{y'≠y} p_{y'}.
    Online: Gaussian log-likelihood ratio of the target's φ under IN and OUT reference
    fits. Offline (OUT references only): the paper's one-sided test, the probability
    Φ((φ − μ_out)/σ_out) that an OUT model is less confident; we return its logarithm
    (``log_ndtr``, same ranking, no saturation at 1 for confident members). Means are
    reference means (not Carlini's medians: means let every target's leave-one-out
    statistics be read off shared sums in O(N)). Variance: per example when every row
    has at least ``min_refs`` (default 32) references on each side used, otherwise one
    variance pooled over all rows (and over IN and OUT for the online attack), as the
    paper advises for few references.
``rmia`` / ``rmia_offline``
    Zarifzadeh et al. (2024) with Pr(x|f) the softmax probability of the true label.
    Pr(x) is the reference mean: online ½(P_in + P_out); offline ½((1+a)·P_out + (1−a))
    with a = 0.3 by default. Population samples z are the rows that are OUT for the
    target; score(x) = share of z with LR(x, z) = ratio(x)/ratio(z) > γ (γ = 1), x itself
    excluded. The z-ratios are sorted once and every x is placed with
    ``np.searchsorted``: O(N log N) time, O(N) memory, no N×N matrix.

Where scores are computed
-------------------------
Every attack is scored a block of targets at a time, from per-row sums over all models
(two passes over blocks of models: the per-row mean, then the centred sums IN and OUT).
``backend="local"`` computes the blocks here; ``backend="dask"`` (`run_mia`,
`attack_scores`) computes the partial sums of each block of models and the scores of each
block of targets on a dask.distributed cluster with futures. A task receives the O(N)
sums (scattered once, to every worker) and the rows of its own models only: each block of
probabilities and memberships goes to the cluster once per run and stays there for every
pass and attack (for a population on disk, the file's name: the worker reads its rows),
and with more than two classes so does each block's signal, computed there once. The
partial sums are added here in block order, and blocks come back in target order, so
both backends give the same numbers bit for bit. The choices made on reference models
(RMIA's a, LiRA's variance) run here on their small subsamples.

Metrics (see :mod:`assay.privacy.vulnerability` for the estimators and intervals): AUC,
TPR at FPR α with the threshold chosen so that the empirical FPR is ≤ α, an averaged ROC
curve on a log-spaced FPR grid with its interval band, per-group figures with the groups
flagged by the one `~assay.groups.FlagRule` (one permutation test for every attack and
grouping), and the records whose membership the attack reveals most.

Every result type (`RocCurve`, `AttackResult`, `MIAResult` and the group and record
types of :mod:`~assay.privacy.vulnerability`) has ``to_dict()`` (JSON-clean, FPR keys
written with ``format(α, "g")``) and ``from_dict()``, which reads it back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import log_ndtr

from assay._stats import Estimate
from assay._validation import (
    MAX_RESAMPLES,
    DataError,
    InvalidParameterError,
    check_option,
    check_scalar,
)
from assay.groups import FlagRule, GroupIndex, permutation_test
from assay.population import Population
from assay.privacy.runners import (
    DaskRunner,
    LocalRunner,
    ahead,
    check_backend,
    open_runner,
)
from assay.privacy.vulnerability import (
    ExposedRecord,
    GroupFinding,
    GroupingVulnerability,
    TargetCurves,
    apply_group_tests,
    auc_estimates,
    check_flag_rule,
    check_group_index,
    flagged_groups,
    fpr_band,
    min_estimable_fpr,
    most_exposed_group,
    not_estimable_reason,
    stream_figures,
    tpr_estimable,
    tpr_estimates,
)

ATTACKS = ("loss", "lira", "lira_offline", "rmia", "rmia_offline")
DEFAULT_FPRS = (0.1, 0.01, 0.001)
#: Fewer references than this on a side → LiRA pools one variance over all rows.
LIRA_MIN_REFS = 32
#: RMIA's offline parameter a (P_in ≈ a·P_out + 1 − a) and its likelihood-ratio threshold γ.
RMIA_A = 0.3
RMIA_GAMMA = 1.0
#: Values of a that offline RMIA's tuning on reference models chooses from.
RMIA_A_GRID = tuple(float(v) for v in np.round(np.linspace(0.0, 1.0, 11), 2))
#: `run_mia` keeps every attack's raw (targets, rows) scores in `AttackResult.scores` up
#: to this many cells (32 MiB of float64 each); above it they are streamed and dropped
#: unless ``keep_scores=True`` (1M rows x 64 targets: 512 MiB an attack).
KEEP_SCORES_CELLS = 1 << 22
# Variances below this are treated as this (a model that outputs a constant).
_VAR_FLOOR = 1e-6
# Populations up to this many (model, row) cells keep their attack signal (float64, 32 MB)
# instead of recomputing it for each pass and block of targets.
_SIGNAL_CACHE_CELLS = 1 << 22
_PROB_EPS = 1e-7
# Probabilities (float32 bytes) of a block of targets at most: blocks of many-class
# populations shrink so that a block stays small in a worker too.
_BLOCK_BYTES = 1 << 24
# A Dask task gathers consecutive blocks up to this many bytes of probabilities (each
# task costs a few round trips between client, scheduler and worker).
_TASK_BYTES = 1 << 25


# --------------------------------------------------------------------------- references


def complement_partners(member: np.ndarray) -> np.ndarray:
    """Index of the model trained on exactly the other rows of each model (-1: none).

    Balanced plans train complementary pairs; a target's partner is left out of its
    references because their outputs are coupled through the split (see the module notes).
    """
    seen: dict[bytes, int] = {}
    for k, row in enumerate(member):
        seen.setdefault(np.packbits(row).tobytes() + bytes([row.size % 8]), k)
    partners = np.full(member.shape[0], -1)
    for k, row in enumerate(member):
        j = seen.get(np.packbits(~row).tobytes() + bytes([row.size % 8]), -1)
        partners[k] = j if j != k else -1
    return partners


def _signal(kind: str, rows: Any, member: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Signal `kind` of a block of models, float64 (models, N), from their probabilities
    (3-d rows), their rows in a memory-mapped file (`_MemmapRows`, read here), or the
    signal itself (2-d rows: as given when writable, a fresh copy the caller may change;
    copied when read-only, as a signal kept on a cluster worker for many tasks is).

    Kinds: "logit" (LiRA, `Population.logit`), "true_prob" (RMIA) and "neg_loss" (LOSS).
    Every cell is computed from its own probabilities alone, so a block's signal is the
    same numbers whichever block or process computes it.
    """
    if isinstance(rows, _MemmapRows):
        rows = rows.load()
    if rows.ndim == 2:
        return rows if rows.flags.writeable else rows.copy()
    block = Population(probs=rows, member=member, y=y)
    if kind == "logit":
        return block.logit()
    if kind == "true_prob":
        return block.true_prob().astype(np.float64)
    return -block.loss().astype(np.float64)


def _kept_signal(kind: str, rows: Any, member: np.ndarray, y: np.ndarray) -> np.ndarray:
    """`_signal`, read-only: kept on a worker and read by many tasks, each of which
    `_signal` hands a copy."""
    signal = _signal(kind, rows, member, y)
    signal.setflags(write=False)
    return signal


@dataclass(frozen=True)
class _MemmapRows:
    """Rows `models` of probabilities that live in a read-only memory-mapped file.

    Only the file's name, offset and shape travel to the process that scores the rows,
    which maps the file and copies out these rows: a Dask worker must see the same file
    (a `LocalCluster`, or storage shared by every machine of the cluster).
    """

    filename: str
    offset: int
    shape: tuple[int, ...]
    dtype: str
    models: np.ndarray

    def load(self) -> np.ndarray:
        whole = np.memmap(self.filename, dtype=np.dtype(self.dtype), mode="r",
                          offset=self.offset, shape=self.shape)
        # Fancy indexing copies; the mapping closes with `whole`, so the pages read do
        # not stay resident in the worker.
        return np.asarray(whole[self.models])


def _memmap_rows(probs: np.ndarray) -> Callable[[np.ndarray], _MemmapRows] | None:
    """How to name rows of `probs` by file, when it is a whole C-ordered memmap whose
    file holds its values (not copy-on-write); a slice of one keeps the file's offset,
    not its own, and is shipped as bytes."""
    import mmap

    if not (isinstance(probs, np.memmap) and probs.filename and probs.mode != "c"
            and isinstance(probs.base, mmap.mmap) and probs.flags.c_contiguous):
        return None
    where = (str(probs.filename), int(probs.offset), tuple(probs.shape), probs.dtype.str)
    return lambda models: _MemmapRows(*where, np.asarray(models, dtype=np.int64))


@dataclass(frozen=True)
class _Sums:
    """Per-row sums of one signal over all models, split by membership (IN: True).

    ``centre`` is the per-row mean over all models; ``by_side[inside]`` holds the count
    of models on that side and the sums of the centred signal and of its square. O(N):
    what every block of targets reads its leave-one-out statistics from (on a cluster,
    sent once to every worker).
    """

    centre: np.ndarray
    by_side: dict[bool, tuple[np.ndarray, np.ndarray, np.ndarray]]


def _model_blocks(n_models: int, n_rows: int, n_classes: int) -> list[np.ndarray]:
    """All models in consecutive blocks: the units of the sums' passes."""
    return _blocks_of(np.arange(n_models), n_rows, n_classes)


def _task_groups(n_blocks: int, block_bytes: int, runner: LocalRunner | DaskRunner
                 ) -> list[range]:
    """Consecutive blocks per task: one locally; on a cluster, as many as keep at least
    two tasks per worker and at most `_TASK_BYTES` of probabilities a task."""
    size = 1
    if not runner.local:
        size = max(1, min(_TASK_BYTES // max(block_bytes, 1),
                          -(-n_blocks // (2 * runner.n_workers))))
    return [range(i, min(i + size, n_blocks)) for i in range(0, n_blocks, size)]


def _partial_totals(kind: str, y: np.ndarray, blocks: list[tuple]) -> np.ndarray:
    """Per-row sum of the signal of each block of models (rows, member), added one model
    at a time: (blocks, N)."""
    out = np.zeros((len(blocks), blocks[0][1].shape[1]))
    for total, (rows, member) in zip(out, blocks, strict=True):
        for row in _signal(kind, rows, member, y):
            total += row
    return out


def _partial_moments(kind: str, y: np.ndarray, centre: np.ndarray, blocks: list[tuple]
                     ) -> np.ndarray:
    """Per-row sums of the centred signal and of its square, IN and OUT, of each block
    of models (rows, member): (blocks, 4, N), rows (s1 IN, s2 IN, s1 OUT, s2 OUT)."""
    out = np.zeros((len(blocks), 4, blocks[0][1].shape[1]))
    for part, (rows, member) in zip(out, blocks, strict=True):
        x_all = _signal(kind, rows, member, y)
        x_all -= centre
        for mine, x in zip(member, x_all, strict=True):
            xx = x * x
            for side, mask in ((0, mine), (2, ~mine)):
                part[side] += x * mask
                part[side + 1] += xx * mask
    return out


def _reduce_sums(runner: LocalRunner | DaskRunner, kind: str,
                 block_of: Callable[[np.ndarray], tuple], member: np.ndarray, y: Any,
                 n_classes: int) -> _Sums:
    """`_Sums` of a signal in two passes over blocks of models (total, then moments);
    `block_of(models)` is what a task reads of them: (rows, membership).

    Each block's partial sums are computed wherever `runner` puts them and added here in
    block order, so a run on a cluster gives the same numbers, bit for bit, as one here.
    """
    n_models, n_rows = member.shape
    blocks = _model_blocks(n_models, n_rows, n_classes)
    groups = _task_groups(len(blocks), blocks[0].size * n_rows * n_classes * 4, runner)

    def bundles() -> Iterator[list[tuple]]:
        for group in groups:
            yield [block_of(blocks[i]) for i in group]

    total = np.zeros(n_rows)
    for parts in runner.map(_partial_totals, ((kind, y, b) for b in bundles())):
        for part in parts:
            total += part
    centre = total / n_models
    shared = runner.put(centre)
    moments = np.zeros((4, n_rows))
    for parts in runner.map(_partial_moments, ((kind, y, shared, b) for b in bundles())):
        for part in parts:
            moments += part
    n_in = member.sum(axis=0)
    return _Sums(centre, {True: (n_in, moments[0], moments[1]),
                          False: (n_models - n_in, moments[2], moments[3])})


@dataclass
class _Terms:
    """What a block of targets subtracts from the `_Sums`: its own and its partners'
    centred signal and memberships (a partner-less target's partner row is unused)."""

    signal: np.ndarray
    centred: np.ndarray
    partner_centred: np.ndarray
    member: np.ndarray
    partner_member: np.ndarray
    has_partner: np.ndarray

    @classmethod
    def of(cls, centre: np.ndarray, signal: np.ndarray, partner_signal: np.ndarray,
           member: np.ndarray, partner_member: np.ndarray, has_partner: np.ndarray
           ) -> _Terms:
        partner_signal -= centre
        return cls(signal, signal - centre, partner_signal, member, partner_member,
                   np.asarray(has_partner, dtype=bool))


def _side(sums: _Sums, terms: _Terms, inside: bool
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count, mean and sum of squared deviations of the references of a block of targets.

    The reference statistics of target k are the totals minus the terms of model k and
    of its complementary partner, so every target costs O(N) instead of O(K·N).
    ``inside`` selects the references that trained on the row (IN) or not (OUT). Arrays
    are (targets, N); the mean is on the centred scale (add ``sums.centre`` for the raw
    one) and NaN where the count is 0.
    """
    n_all, s1, s2 = sums.by_side[inside]
    n = n_all.astype(np.float64)
    for x, member, present in ((terms.centred, terms.member, None),
                               (terms.partner_centred, terms.partner_member,
                                terms.has_partner)):
        mine = member if inside else ~member
        if present is not None:
            mine = mine & present[:, None]
        xj = x * mine
        n = n - mine
        s1 = s1 - xj
        xj *= xj
        s2 = s2 - xj
    mean = s1 / np.maximum(n, 1.0)
    ss = s2 - s1 * mean  # Σx² − (Σx)²/n; 0 where n = 0 (then s1 = 0)
    np.maximum(ss, 0.0, out=ss)
    mean[n == 0] = np.nan
    return n, mean, ss


class _LeaveOneOut:
    """Leave-one-out statistics of a signal held whole (the small populations that the
    tuning of LiRA's variance and RMIA's a runs on), through the attacks' own sums."""

    def __init__(self, signal: np.ndarray, member: np.ndarray) -> None:
        self.signal = signal
        self.member = member
        self.partner = complement_partners(member)
        self.sums = _reduce_sums(LocalRunner(), "signal", lambda ms: (signal[ms], member[ms]),
                                 member, None, 2)
        self.centre = self.sums.centre

    def terms(self, ks: np.ndarray) -> _Terms:
        ks = np.asarray(ks, dtype=np.int64)
        partners = np.maximum(self.partner[ks], 0)
        return _Terms.of(self.centre, self.signal[ks], self.signal[partners],
                         self.member[ks], self.member[partners], self.partner[ks] >= 0)

    def side(self, ks: np.ndarray, inside: bool, terms: _Terms | None = None):
        return _side(self.sums, self.terms(ks) if terms is None else terms, inside)


@dataclass(frozen=True)
class _Spec:
    """What one attack computes for a block of targets (sent with every task)."""

    attack: str
    kind: str
    online: bool = True
    gamma: float = RMIA_GAMMA
    tie_break: bool = True


def _score_task(spec: _Spec, sums: _Sums | None, y: np.ndarray, blocks: list[tuple]
                ) -> np.ndarray:
    """Scores of a task's blocks of targets, in order (runs here or on a worker)."""
    out = [_score_block(spec, sums, y, *block) for block in blocks]
    return out[0] if len(out) == 1 else np.concatenate(out)


def _score_block(spec: _Spec, sums: _Sums | None, y: np.ndarray, rows: Any,
                 partner_rows: Any, member: np.ndarray, partner_member: np.ndarray,
                 has_partner: np.ndarray, extra: np.ndarray | None) -> np.ndarray:
    """Scores of one block of targets from their rows, their partners' and the sums;
    `extra` is each target's LiRA per-example flag or RMIA a."""
    signal = _signal(spec.kind, rows, member, y)
    if spec.attack == "loss":
        return signal
    terms = _Terms.of(sums.centre, signal, _signal(spec.kind, partner_rows, partner_member, y),
                      member, partner_member, has_partner)
    if spec.attack == "lira":
        return _lira_block(sums, terms, spec.online, extra)
    return _rmia_block(sums, terms, spec.online, extra, spec.gamma, spec.tie_break)


class _Scorer:
    """Blocks of scores of a population's targets, computed by a runner.

    Each task gets what its blocks need and nothing of size (models, rows): the rows of
    its targets and of their partners (on a cluster, each block sent once per run and
    kept there for every pass and attack; for a population on disk, where to read them),
    their memberships, and the per-row sums of the signal (computed once per signal and
    call, and sent once to every worker). Locally, a population of at most
    `_SIGNAL_CACHE_CELLS` cells keeps one signal whole instead of recomputing it per pass
    and block.
    """

    def __init__(self, population: Population, runner: LocalRunner | DaskRunner) -> None:
        self.population = population
        self.runner = runner
        self.member = population.member
        self.partner = complement_partners(self.member)
        self.n_classes = population.n_classes
        self._by_file = None if runner.local else _memmap_rows(population.probs)
        self._y = runner.put(np.asarray(population.y))
        self._sums: dict[str, Any] = {}
        self._cache: dict[str, np.ndarray] = {}
        self._recent: dict[str, list[dict[int, np.ndarray]]] = {}

    def rows(self, kind: str, models: np.ndarray) -> Any:
        """What a task computes the signal `kind` of `models` from."""
        if not self.runner.local:
            return self._cluster_rows(kind, models)
        if self.member.size <= _SIGNAL_CACHE_CELLS:
            if kind not in self._cache:
                self._cache = {kind: _signal(kind, self.population.probs, self.member,
                                             self.population.y)}
            return self._cache[kind][models]  # fancy indexing: a fresh copy
        return self._recent_signal(kind, np.asarray(models, dtype=np.int64))

    def _cluster_rows(self, kind: str, models: np.ndarray) -> Any:
        """On a cluster: the block's probabilities, sent once per run (for a population
        on disk, where to read them). With more than two classes, the block's signal is
        computed there once and kept: recomputing it every pass costs a sum over the
        classes, and it takes 8 bytes a cell where the probabilities take 4 per class."""
        ids = tuple(int(m) for m in models)
        rows = self._by_file(models) if self._by_file is not None else self.runner.share(
            ("probs", *ids), lambda: self.population.read_models(models))
        if self.n_classes <= 2:
            return rows
        return self.runner.share_result((kind, *ids), _kept_signal, kind, rows,
                                        self.members(models), self._y)

    def members(self, models: np.ndarray) -> Any:
        """Membership rows of `models` (on a cluster, sent once per run)."""
        if self.runner.local:
            return self.member[models]
        return self.runner.share(("member", *map(int, models)), lambda: self.member[models])

    def _recent_signal(self, kind: str, models: np.ndarray) -> np.ndarray:
        """Signal of `models` computed here, reusing the rows of the last two calls: a
        block's partners are mostly its own or the next block's targets, so each
        target's signal is computed once instead of twice (same numbers: every cell is
        computed from its own probabilities)."""
        kept = self._recent.get(kind, [{}, {}])
        known = {**kept[0], **kept[1]}
        missing = [int(m) for m in models if int(m) not in known]
        if missing:
            rows = _signal(kind, self.population.read_models(missing), self.member[missing],
                           self.population.y)
            known.update(zip(missing, rows, strict=True))
        mine = {int(m): known[int(m)] for m in models}
        self._recent = {kind: [kept[1], mine]}
        return np.stack([mine[int(m)] for m in models])

    def sums(self, kind: str) -> Any:
        if kind not in self._sums:
            sums = _reduce_sums(self.runner, kind,
                                lambda ms: (self.rows(kind, ms), self.members(ms)),
                                self.member, self._y, self.n_classes)
            self._sums[kind] = self.runner.put(sums)
        return self._sums[kind]

    def blocks(self, spec: _Spec, t: np.ndarray, extra: np.ndarray | None = None
               ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(targets, scores) a task at a time, in the order of `t`."""
        blocks = _blocks_of(t, self.population.n_rows, self.n_classes)
        sums = None if spec.attack == "loss" else self.sums(spec.kind)
        per_block = 2 * blocks[0].size * self.population.n_rows * self.n_classes * 4
        groups = _task_groups(len(blocks), per_block, self.runner)
        starts = np.cumsum([0] + [b.size for b in blocks])
        tasks = ((spec, sums, self._y, [self._block(spec, blocks[i], extra, starts[i])
                                        for i in group])
                 for group in groups)
        done = self.runner.map(_score_task, tasks)
        for group, scores in zip(groups, done, strict=True):
            yield np.concatenate([blocks[i] for i in group]), scores

    def _block(self, spec: _Spec, ks: np.ndarray, extra: np.ndarray | None,
               start: int) -> tuple:
        partners = np.maximum(self.partner[ks], 0)
        if spec.attack == "loss":  # no references: the partner's terms are not needed
            return (self.rows(spec.kind, ks), None, self.members(ks), None, None, None)
        return (self.rows(spec.kind, ks), self.rows(spec.kind, partners), self.members(ks),
                self.members(partners), self.partner[ks] >= 0,
                None if extra is None else extra[start:start + ks.size])


def _check_population(population: Population, need_refs: bool, attack: str) -> None:
    if not isinstance(population, Population):
        raise InvalidParameterError(
            f"population must be an assay.population.Population. "
            f"Got {type(population).__name__}.")
    if need_refs and population.n_models < 2:
        raise DataError(f"population must hold at least 2 models for the {attack} attack "
                        f"(the target and a reference). Got {population.n_models}.")


def _check_targets(population: Population, targets) -> np.ndarray:
    if targets is None:
        return np.arange(population.n_models)
    t = np.atleast_1d(np.asarray(targets))
    if t.size == 0 or not np.issubdtype(t.dtype, np.integer) or t.min() < 0 \
            or t.max() >= population.n_models:
        raise InvalidParameterError(
            f"targets must be model indices in [0, {population.n_models - 1}]. Got {targets!r}.")
    return t.astype(np.int64)


# --------------------------------------------------------------------------- attacks


def loss_scores(population: Population, targets=None) -> np.ndarray:
    """LOSS attack: the target model's log-probability of the true label.

    Parameters
    ----------
    population : Population
    targets : sequence of int, optional
        Models attacked (default: all).

    Returns
    -------
    ndarray of shape (n_targets, n_rows)
        Higher means more likely a member (lower loss).
    """
    _check_population(population, False, "loss")
    t = _check_targets(population, targets)
    return np.concatenate([b for _, b in _loss_blocks(population, t)])


def _loss_blocks(population: Population, t: np.ndarray,
                 scorer: _Scorer | None = None
                 ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """LOSS scores a block of targets at a time: (targets, their scores)."""
    scorer = scorer or _Scorer(population, LocalRunner())
    return scorer.blocks(_Spec("loss", "neg_loss"), t)


def _blocks_of(t: np.ndarray, n_rows: int, n_classes: int = 2) -> list[np.ndarray]:
    """Targets `t` in blocks of about 256k (target, row) cells (a block's temporaries
    stay in cache: larger blocks measured 1.7x slower on Adult), and of at most
    `_BLOCK_BYTES` of probabilities."""
    n_rows = max(n_rows, 1)
    size = max(1, min((1 << 18) // n_rows, _BLOCK_BYTES // (n_rows * max(n_classes, 1) * 4)))
    return [t[i:i + size] for i in range(0, t.size, size)]


def lira_variance_mode(population: Population, online: bool = True,
                       min_refs: int = LIRA_MIN_REFS) -> str:
    """"per_example" if every row has ≥ ``min_refs`` references per side used, else "fixed"."""
    member = population.member
    k = population.n_models
    partners = complement_partners(member)
    has_partner = partners >= 0
    n_in_all = member.sum(axis=0)
    fewest = np.inf
    for ks in _blocks_of(np.arange(k), member.shape[1]):  # O(block · N) memory
        partner_in = member[np.maximum(partners[ks], 0)] & has_partner[ks, None]
        n_in = n_in_all - member[ks] - partner_in
        n_out = k - 1 - has_partner[ks, None] - n_in
        fewest = min(fewest, n_out.min() if not online else min(n_in.min(), n_out.min()))
    return "per_example" if fewest >= min_refs else "fixed"


def _pooled_variance(sides: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> np.ndarray:
    """One variance per target (rows of the (T, N) sides), pooled over rows and sides."""
    ss = sum(np.where(s[0] >= 2, s[2], 0.0).sum(axis=-1) for s in sides)
    dof = sum(np.where(s[0] >= 2, s[0] - 1, 0).sum(axis=-1) for s in sides)
    if np.any(dof <= 0):
        raise DataError("LiRA needs at least 2 references on one side of some row to estimate "
                        "a variance (a population of at least 6 models). Got fewer; train "
                        "more models.")
    return np.maximum(ss / dof, _VAR_FLOOR)


def _side_variance(side, per_example: np.ndarray, pooled: np.ndarray | None) -> np.ndarray:
    """Per-row variances for targets with ``per_example``, their pooled one for the rest."""
    n, _, ss = side
    per_row = np.maximum(ss / np.maximum(n - 1, 1), _VAR_FLOOR)
    if pooled is None:
        return per_row
    return np.where(np.asarray(per_example)[:, None], per_row, pooled[:, None])


def _gauss_logpdf(x: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    return -0.5 * (np.log(2 * np.pi * var) + (x - mean) ** 2 / var)


def _lira_block(sums: _Sums, terms: _Terms, online: bool,
                per_example: bool | np.ndarray) -> np.ndarray:
    """LiRA scores of a block of targets (`terms`) against their references (`sums`)."""
    out = _side(sums, terms, False)
    if np.any(out[0] == 0):
        raise DataError("LiRA needs at least one OUT reference model for every row. "
                        "Got rows without any; train more models.")
    sides = [out]
    if online:
        inn = _side(sums, terms, True)
        if np.any(inn[0] == 0):
            raise DataError("online LiRA needs at least one IN reference model for every "
                            "row. Got rows without any; train more models or use "
                            "lira_offline.")
        sides.append(inn)
    per_example = np.broadcast_to(np.asarray(per_example, dtype=bool), (len(terms.signal),))
    pooled = None if per_example.all() else _pooled_variance(sides)
    q = terms.centred
    var_out = _side_variance(out, per_example, pooled)
    if not online:
        return log_ndtr((q - out[1]) / np.sqrt(var_out))
    var_in = _side_variance(inn, per_example, pooled)
    return _gauss_logpdf(q, inn[1], var_in) - _gauss_logpdf(q, out[1], var_out)


def lira_scores(
    population: Population,
    targets=None,
    *,
    online: bool = True,
    variance: str = "auto",
    min_refs: int = LIRA_MIN_REFS,
) -> np.ndarray:
    """LiRA scores, each target against the other models as references.

    Parameters
    ----------
    population : Population
    targets : sequence of int, optional
        Models attacked (default: all).
    online : bool, default=True
        Use IN and OUT references (likelihood ratio); False: OUT only (one-sided test,
        log Φ((φ − μ_out)/σ_out)).
    variance : {"auto", "fixed", "per_example"}, default="auto"
        "auto" uses per-example variances when every row has at least ``min_refs``
        references on each side used; with fewer, per-example or one pooled ("fixed")
        variance as chosen on reference models (`lira_variance_plan`).
    min_refs : int, default=32
        Threshold of "auto".

    Returns
    -------
    ndarray of shape (n_targets, n_rows)
    """
    _check_population(population, True, "lira")
    t = _check_targets(population, targets)
    check_option(variance, "variance", ("auto", "fixed", "per_example"))
    min_refs = check_scalar(min_refs, "min_refs", kind=int, low=2)
    per_example, _ = lira_variance_plan(population, online, variance, min_refs)
    return np.concatenate([b for _, b in _lira_blocks(population, t, online, per_example[t])])


def _lira_blocks(population: Population, t: np.ndarray, online: bool,
                 per_example: np.ndarray, scorer: _Scorer | None = None
                 ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """LiRA scores a block of targets at a time: (targets, their scores); `per_example`
    says, for each of `t`, whether it uses per-row variances."""
    scorer = scorer or _Scorer(population, LocalRunner())
    return scorer.blocks(_Spec("lira", "logit", online), t,
                         np.asarray(per_example, dtype=bool))


def lira_variance_plan(population: Population, online: bool = True, variance: str = "auto",
                       min_refs: int = LIRA_MIN_REFS, random_state: int | None = 0
                       ) -> tuple[np.ndarray, dict[str, Any]]:
    """Whether each model, as target, gets per-row variances; and what to record.

    "auto": per-row when every row has at least `min_refs` references per side (the
    paper's rule); with fewer, the choice between per-row and one pooled variance is
    tuned on reference models of the other fold (`tune_lira_variance`): the paper
    advises pooling for few references, but models that memorise their rows (a fully
    grown forest) leak far more under per-row variances (AUC 0.967 against 0.878 with 16
    references per side, German credit), and an audit must not under-report.
    """
    k = population.n_models
    if variance != "auto":
        return np.full(k, variance == "per_example"), {"variance": variance}
    if lira_variance_mode(population, online, min_refs) == "per_example":
        return np.ones(k, dtype=bool), {"variance": "per_example"}
    per_example, info = tune_lira_variance(population, online=online,
                                           random_state=random_state)
    chosen = ("per_example" if per_example.all() else
              "fixed" if not per_example.any() else "per fold")
    return per_example, {"variance": chosen, "variance_tuning": info}


def tune_lira_variance(
    population: Population,
    *,
    online: bool = True,
    n_pseudo_targets: int = 4,
    max_rows: int = 20_000,
    random_state: int | None = 0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Per-row or pooled LiRA variances for every model as target, chosen on references.

    As `tune_rmia_a`: the models are split into two folds (complementary partners
    together); on one fold, a few models are attacked as pseudo-targets with the rest of
    that fold as references, both ways, and the way with the higher mean AUC is used for
    the targets of the other fold. No target's membership, nor its partner's, enters
    its choice. A fold too small to compare both ways keeps the pooled variance.

    Returns
    -------
    per_example : bool ndarray of shape (n_models,)
    info : dict
        ``by_fold`` (the choice for each fold's targets), ``auc_by_fold`` (the two
        pseudo-target AUCs behind it), ``tuned``, ``n_pseudo_targets``, ``max_rows``.
    """
    rng = np.random.default_rng(random_state)
    folds, chooser = _tuning_folds(population, max_rows, rng)
    chosen: list[str] = []
    aucs_by_fold: list[dict[str, float | None]] = []
    for fold in chooser:
        aucs = {} if fold is None else _lira_variance_aucs(fold, online, n_pseudo_targets, rng)
        both = len(aucs) == 2
        chosen.append("per_example" if both and aucs["per_example"] > aucs["fixed"]
                      else "fixed")
        aucs_by_fold.append({m: (None if not both else float(v)) for m, v in aucs.items()})
    info = {"by_fold": chosen, "auc_by_fold": aucs_by_fold,
            "tuned": [bool(a) and None not in a.values() for a in aucs_by_fold],
            "n_pseudo_targets": int(n_pseudo_targets), "max_rows": int(max_rows),
            "method": "higher mean AUC of LiRA on pseudo-targets of the other fold of models "
                      "(complementary pairs kept together)"}
    return np.asarray([c == "per_example" for c in chosen])[folds], info


def _lira_variance_aucs(fold: Population, online: bool, n_pseudo: int,
                        rng: np.random.Generator) -> dict[str, float]:
    """Mean LiRA AUC of a few pseudo-targets of `fold` with pooled and per-row variances
    (a way that cannot run on so few references is left out)."""
    member = fold.member
    loo = _LeaveOneOut(fold.logit(), member)
    pseudo = rng.choice(fold.n_models, size=min(n_pseudo, fold.n_models), replace=False)
    terms = loo.terms(pseudo)
    aucs = {}
    for mode in ("fixed", "per_example"):
        try:
            scores = _lira_block(loo.sums, terms, online, mode == "per_example")
        except DataError:
            continue
        aucs[mode] = float(TargetCurves(scores, member[pseudo]).auc().mean())
    return aucs


def _rmia_marginal(sums: _Sums, terms: _Terms, online: bool, a: np.ndarray) -> np.ndarray:
    """Pr(x) of every row from the references of each target of `terms` (raw probability
    scale), shape (targets, N); `a` holds each target's offline parameter."""
    n_out, mu_out, _ = _side(sums, terms, False)
    mu_out = mu_out + sums.centre
    if np.any(np.all(n_out == 0, axis=1)):
        raise DataError("RMIA needs OUT reference models for some rows. Got none; "
                        "train more models.")
    # Rows without any OUT reference (tiny populations) borrow the average OUT probability.
    known = np.where(n_out > 0, mu_out, np.nan)
    mu_out = np.where(n_out > 0, mu_out, np.nanmean(known, axis=1, keepdims=True))
    a = a[:, None]
    offline = 0.5 * ((1 + a) * mu_out + (1 - a))
    if not online:
        return offline
    n_in, mu_in, _ = _side(sums, terms, True)
    mu_in = mu_in + sums.centre
    # Rows without IN references fall back on the offline approximation of P_in.
    return np.where(n_in > 0, 0.5 * (mu_in + mu_out), offline)


def _dominated_share(ratio: np.ndarray, is_z: np.ndarray, gamma: float,
                     tie_break: bool = True) -> np.ndarray:
    """Share of population samples z with LR(x, z) = ratio(x)/ratio(z) > γ, for every x.

    One argsort: the z-ratios come out sorted with it, and the queries ratio(x)/γ are
    then sorted too, so the search runs through both in order (x itself excluded).
    With `tie_break`, rows with equal shares are ordered by their ratio (a term below
    half the smallest gap between two distinct shares, so no share changes rank):
    without it every member that dominates all z ties with the top non-member at 1,
    and the TPR at FPRs below 1/n_z reads 0 however strong the attack.
    """
    n = ratio.size
    order = np.argsort(ratio)  # unstable (SIMD, 3x faster): ties are found by value below
    ranked = ratio[order]
    z_in_order = is_z[order]
    n_z = int(z_in_order.sum())
    # Values below each sorted position's value: the start of its run of equal values.
    starts = np.empty(n, dtype=bool)
    starts[0] = True
    np.not_equal(ranked[1:], ranked[:-1], out=starts[1:])
    below = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    count = np.empty(n)
    if gamma == 1.0:
        # LR(x, z) > 1 ⇔ ratio(z) < ratio(x): the z before x's run in the sorted order.
        z_before = np.cumsum(z_in_order) - z_in_order
        count[order] = z_before[below]
    else:
        # LR(x, z) > γ  ⇔  ratio(z) < ratio(x)/γ; the queries are sorted too.
        count[order] = np.searchsorted(ranked[z_in_order], ranked / gamma, side="left")
        count -= is_z & (gamma < 1.0)  # x = z gives LR 1, counted only when γ < 1
    share = count / np.maximum(n_z - is_z, 1)
    if tie_break:
        # Shares are k/n_z or k/(n_z − 1): distinct ones differ by at least 1/n_z².
        rank = np.empty(n)
        rank[order] = below  # equal ratios, equal rank
        share += rank / n * (0.25 / max(n_z, 2) ** 2)
    return share


def _rmia_block(sums: _Sums, terms: _Terms, online: bool, a: np.ndarray,
                gamma: float, tie_break: bool = True) -> np.ndarray:
    """RMIA scores of a block of targets (`terms`) against their references (`sums`)."""
    ratio = terms.signal / np.maximum(_rmia_marginal(sums, terms, online, a), _PROB_EPS)
    return np.stack([_dominated_share(r, ~m, gamma, tie_break)
                     for r, m in zip(ratio, terms.member, strict=True)])


def _pair_folds(member: np.ndarray) -> np.ndarray:
    """Two folds of models (0/1 each) that keep complementary partners together."""
    partners = complement_partners(member)
    k = np.arange(member.shape[0])
    pair = np.where(partners >= 0, np.minimum(k, partners), k)
    return np.unique(pair, return_inverse=True)[1] % 2


def _tuning_folds(population: Population, max_rows: int, rng: np.random.Generator
                  ) -> tuple[np.ndarray, list[Population | None]]:
    """The two folds of models (`_pair_folds`) and, for the targets of fold 0 then fold 1,
    the population a choice is made on: the other fold's models on at most `max_rows`
    sampled rows (None when that fold has fewer than 4 models)."""
    rows = np.arange(population.n_rows)
    if rows.size > max_rows:
        rows = np.sort(rng.choice(rows, size=max_rows, replace=False))
    folds = _pair_folds(population.member)
    chooser = []
    for fold in (1, 0):  # fold 1's models choose for fold 0's targets, and back
        models = np.flatnonzero(folds == fold)
        chooser.append(None if models.size < 4 else Population(
            probs=_rows_of(population, models, rows),
            member=population.member[np.ix_(models, rows)], y=population.y[rows]))
    return folds, chooser


def _rows_of(population: Population, models: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``probs[np.ix_(models, rows)]`` read a block of models at a time (a population on
    disk never has more than one block resident)."""
    step = max(1, _SIGNAL_CACHE_CELLS // max(population.n_rows, 1))
    return np.concatenate([population.read_models(models[i:i + step])[:, rows]
                           for i in range(0, models.size, step)])


def _tune_a_on(fold: Population, grid: np.ndarray, n_pseudo: int,
               rng: np.random.Generator) -> float | None:
    """The grid value of a with the best mean offline-RMIA AUC over pseudo-targets drawn
    from these models (each against the others as references); None when too few."""
    signal = fold.true_prob().astype(np.float64)
    member = fold.member
    loo = _LeaveOneOut(signal, member)
    pseudo = rng.choice(member.shape[0], size=min(n_pseudo, member.shape[0]), replace=False)
    n_out, mu_out, _ = loo.side(pseudo, False)
    if np.any(n_out == 0):
        return None
    mu_out = mu_out + loo.centre
    aucs = []
    for a in grid:
        marginal = 0.5 * ((1 + a) * mu_out + (1 - a))
        ratio = signal[pseudo] / np.maximum(marginal, _PROB_EPS)
        scores = np.stack([_dominated_share(r, ~member[j], RMIA_GAMMA)
                           for r, j in zip(ratio, pseudo, strict=True)])
        aucs.append(TargetCurves(scores, member[pseudo]).auc().mean())
    aucs = np.asarray(aucs)
    # Ties go to the value nearest the paper's default.
    best = np.flatnonzero(aucs >= aucs.max() - 1e-12)
    return float(grid[best[np.argmin(np.abs(grid[best] - RMIA_A))]])


def tune_rmia_a(
    population: Population,
    *,
    grid: Sequence[float] = RMIA_A_GRID,
    n_pseudo_targets: int = 4,
    max_rows: int = 20_000,
    random_state: int | None = 0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Offline RMIA's a for every model as target, tuned on reference models only.

    The models are split into two folds (complementary partners together); a is chosen
    on one fold (a few of its models as pseudo-targets, the rest of that fold as their
    references, up to `max_rows` rows) for the targets of the other fold, so no
    target's membership, nor its partner's, enters the choice of its a. Privacy Meter
    tunes a on reference models the same way; a fixed a under-reports leakage.

    Returns
    -------
    a : ndarray of shape (n_models,)
        The a used when each model is the target.
    info : dict
        ``by_fold`` (the two values), ``tuned`` (whether each fold could be tuned; an
        untuned fold keeps the default 0.3), ``grid``, ``n_pseudo_targets``, ``max_rows``.
    """
    grid_arr = np.asarray([check_scalar(v, "grid", low=0.0, high=1.0) for v in grid])
    rng = np.random.default_rng(random_state)
    folds, chooser = _tuning_folds(population, max_rows, rng)
    chosen: list[float] = []
    tuned: list[bool] = []
    for fold in chooser:
        a = None if fold is None else _tune_a_on(fold, grid_arr, n_pseudo_targets, rng)
        tuned.append(a is not None)
        chosen.append(RMIA_A if a is None else a)
    info = {"by_fold": chosen, "tuned": tuned, "grid": [float(v) for v in grid_arr],
            "n_pseudo_targets": int(n_pseudo_targets), "max_rows": int(max_rows),
            "method": "best mean AUC of offline RMIA on pseudo-targets of the other fold "
                      "of models (complementary pairs kept together)"}
    return np.asarray(chosen)[folds], info


def rmia_scores(
    population: Population,
    targets=None,
    *,
    online: bool = True,
    a: float | Sequence[float] | str = "auto",
    gamma: float = RMIA_GAMMA,
    tie_break: bool = True,
) -> np.ndarray:
    """RMIA scores, each target against the other models as references.

    Parameters
    ----------
    population : Population
    targets : sequence of int, optional
        Models attacked (default: all).
    online : bool, default=True
        Pr(x) from IN and OUT references; False: OUT only with the linear
        approximation P_in ≈ a·P_out + (1 − a).
    a : "auto", float in [0, 1] or one per target, default="auto"
        Offline approximation parameter (online: used only for rows without IN
        references). "auto": offline tunes it on reference models (`tune_rmia_a`),
        online uses 0.3.
    gamma : float > 0, default=1.0
        Likelihood-ratio threshold of the pairwise comparison.
    tie_break : bool, default=True
        Order rows with equal shares by their likelihood ratio (adds less than half
        the smallest gap between distinct shares). Without it, members that dominate
        every population sample tie at 1 with the top non-member, and the TPR at FPRs
        below 1 / (number of z) is 0.

    Returns
    -------
    ndarray of shape (n_targets, n_rows)
        Share of population samples z (rows OUT for the target) that x dominates.
    """
    _check_population(population, True, "rmia")
    t = _check_targets(population, targets)
    a_t = _rmia_a_per_target(population, t, online, a)
    gamma = check_scalar(gamma, "gamma", low=0.0, low_open=True)
    return np.concatenate([b for _, b in _rmia_blocks(population, t, online, a_t, gamma,
                                                      tie_break)])


def _rmia_blocks(population: Population, t: np.ndarray, online: bool, a_t: np.ndarray,
                 gamma: float, tie_break: bool = True, scorer: _Scorer | None = None
                 ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """RMIA scores a block of targets at a time: (targets, their scores); `a_t` holds
    the offline parameter of each of `t`."""
    scorer = scorer or _Scorer(population, LocalRunner())
    return scorer.blocks(_Spec("rmia", "true_prob", online, gamma, tie_break), t,
                         np.asarray(a_t, dtype=float))


def _rmia_a_per_target(population: Population, t: np.ndarray, online: bool,
                       a: Any) -> np.ndarray:
    if isinstance(a, str):
        check_option(a, "a", ("auto",))
        if online:
            return np.full(t.size, RMIA_A)
        return tune_rmia_a(population)[0][t]
    values = np.atleast_1d(np.asarray(a, dtype=float))
    if values.size not in (1, t.size):
        raise InvalidParameterError(f"a must be 'auto', one value or one per target "
                                    f"({t.size}). Got {values.size} values.")
    for v in values:
        check_scalar(float(v), "a", low=0.0, high=1.0)
    return np.broadcast_to(values, (t.size,)).astype(float)


def _score_blocks(population: Population, attack: str, t: np.ndarray,
                  params: dict[str, Any], scorer: _Scorer | None = None
                  ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Scores of the named attack, a block of targets at a time: (targets, scores).

    Nothing of size (targets, rows) outlives its block: the caller keeps what it needs.
    Checks run when the generator is created, not at its first block. `scorer` says
    where the blocks are computed and keeps the per-row sums between attacks (default:
    here, for this call only).
    """
    if attack == "loss":
        _check_population(population, False, attack)
        return _loss_blocks(population, t, scorer)
    _check_population(population, True, attack.split("_")[0])
    online = not attack.endswith("_offline")
    if attack.startswith("lira"):
        min_refs = check_scalar(params["lira_min_refs"], "min_refs", kind=int, low=2)
        per_example = params.get("lira_per_example")
        if per_example is None:
            per_example = lira_variance_plan(population, online, "auto", min_refs)[0][t]
        return _lira_blocks(population, t, online, np.asarray(per_example, dtype=bool),
                            scorer)
    a_t = _rmia_a_per_target(population, t, online, params["rmia_a"])
    gamma = check_scalar(params["rmia_gamma"], "gamma", low=0.0, low_open=True)
    return _rmia_blocks(population, t, online, a_t, gamma, scorer=scorer)


def attack_scores(population: Population, attack: str, targets=None, *,
                  backend: str = "local", scheduler_address: str | None = None,
                  **params) -> np.ndarray:
    """Scores of the named attack (one of ``ATTACKS``), shape (n_targets, n_rows).

    ``params``: ``lira_min_refs`` (32), ``rmia_a`` ("auto"), ``rmia_gamma`` (1.0).
    ``backend`` and ``scheduler_address``: where the blocks of targets are scored, as
    in `run_mia`.
    """
    check_option(attack, "attack", ATTACKS)
    check_backend(backend, scheduler_address)
    merged = {"lira_min_refs": LIRA_MIN_REFS, "rmia_a": "auto", "rmia_gamma": RMIA_GAMMA,
              **params}
    _check_population(population, False, attack)
    t = _check_targets(population, targets)
    with open_runner(backend, scheduler_address) as runner:
        blocks = _score_blocks(population, attack, t, merged, _Scorer(population, runner))
        return np.concatenate([b for _, b in blocks])


# --------------------------------------------------------------------------- results


def _fpr_key(a: float) -> str:
    return format(float(a), "g")


def _json_float(value: float) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _float(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _estimate_dict(e: Estimate) -> dict[str, float | None]:
    return {k: _json_float(v) for k, v in e.to_dict().items()}


@dataclass
class RocCurve:
    """ROC averaged over targets on a log-spaced FPR grid (for a log-log plot).

    ``tpr`` is the mean over targets of the conservative TPR at FPR ≤ each grid value;
    ``tpr_low`` / ``tpr_high`` its pointwise interval.
    """

    fpr: np.ndarray
    tpr: np.ndarray
    tpr_low: np.ndarray
    tpr_high: np.ndarray

    def to_dict(self) -> dict[str, list[float]]:
        """JSON-clean form."""
        return {"fpr": [float(v) for v in self.fpr], "tpr": [float(v) for v in self.tpr],
                "tpr_low": [float(v) for v in self.tpr_low],
                "tpr_high": [float(v) for v in self.tpr_high]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RocCurve:
        """Inverse of `to_dict`."""
        return cls(**{k: np.asarray([_float(v) for v in d[k]], dtype=float)
                      for k in ("fpr", "tpr", "tpr_low", "tpr_high")})


@dataclass
class AttackResult:
    """Figures of one attack over all its targets.

    Attributes
    ----------
    name : str
    auc : Estimate
        Mean AUC over targets with its interval.
    tpr_at_fpr : dict of float to Estimate
        Conservative TPR at FPR ≤ α (threshold per target), mean over targets.
    roc : RocCurve
    groups : dict of str to GroupingVulnerability
        Keyed by grouping ("sex", "sex & race"), inside by group label
        ("sex=Female & race=Black"); empty without groups.
    flagged_groups : list of GroupFinding
        Groups the flag rule holds for, over every grouping, largest AUC difference
        first; empty when none is.
    most_exposed_group : GroupFinding or None
        The supported group with the highest AUC (with whether it is flagged).
    records : list of ExposedRecord
        Rows with the largest membership effect.
    targets : ndarray of int
        Models that were attacked.
    per_target_auc : ndarray
    params : dict
        Attack settings actually used (e.g. LiRA's variance mode).
    n_nonmembers : int
        Fewest non-members of a target: a TPR at an FPR below
        ``min_estimable_fpr(n_nonmembers)`` is NaN ("not estimable"); 0: not recorded.
    n_members : float
        Mean training rows (members) of a target.
    statistic : ndarray of shape (n_rows,), optional
        Per-row membership statistic the group test used (not serialised).
    scores : ndarray of shape (n_targets, n_rows), optional
        Raw scores (not serialised).
    """

    name: str
    auc: Estimate
    tpr_at_fpr: dict[float, Estimate]
    roc: RocCurve
    groups: dict[str, GroupingVulnerability] = field(default_factory=dict)
    flagged_groups: list[GroupFinding] = field(default_factory=list)
    most_exposed_group: GroupFinding | None = None
    records: list[ExposedRecord] = field(default_factory=list)
    targets: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    per_target_auc: np.ndarray = field(default_factory=lambda: np.zeros(0))
    params: dict[str, Any] = field(default_factory=dict)
    n_nonmembers: int = 0
    n_members: float = 0.0
    statistic: np.ndarray | None = field(default=None, repr=False)
    scores: np.ndarray | None = field(default=None, repr=False)

    def estimable(self, fpr: float) -> bool:
        """Whether the TPR at ``fpr`` is a figure (its non-members resolve the FPR)."""
        return self.n_nonmembers <= 0 or tpr_estimable(fpr, self.n_nonmembers)

    @property
    def min_estimable_fpr(self) -> float | None:
        """Smallest FPR whose TPR is estimable (None: non-members not recorded)."""
        return min_estimable_fpr(self.n_nonmembers) if self.n_nonmembers > 0 else None

    def tpr_reason(self, fpr: float) -> str | None:
        """Why the TPR at ``fpr`` is not given ("not estimable with 500 non-members ...")."""
        return None if self.estimable(fpr) else not_estimable_reason(self.n_nonmembers)

    def _tpr_dict(self, fpr: float, e: Estimate) -> dict[str, Any]:
        out: dict[str, Any] = {**_estimate_dict(e), "estimable": self.estimable(fpr)}
        if not out["estimable"]:
            out.update(value=None, ci_low=None, ci_high=None, reason=self.tpr_reason(fpr),
                       min_estimable_fpr=self.min_estimable_fpr,
                       n_nonmembers=int(self.n_nonmembers))
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-clean form (FPR keys written with ``format(α, 'g')``, NaN as null); a TPR
        that is not estimable is null with ``reason``, ``min_estimable_fpr`` and
        ``n_nonmembers``."""
        return {
            "name": self.name,
            "auc": _estimate_dict(self.auc),
            "tpr_at_fpr": {_fpr_key(a): self._tpr_dict(a, e) for a, e in self.tpr_at_fpr.items()},
            "n_nonmembers": int(self.n_nonmembers),
            "n_members": float(self.n_members),
            "min_estimable_fpr": self.min_estimable_fpr,
            "roc": self.roc.to_dict(),
            "groups": {k: v.to_dict() for k, v in self.groups.items()},
            "flagged_groups": [g.to_dict() for g in self.flagged_groups],
            "most_exposed_group": (None if self.most_exposed_group is None
                                   else self.most_exposed_group.to_dict()),
            "records": [r.to_dict() for r in self.records],
            "targets": [int(t) for t in self.targets],
            "per_target_auc": [_json_float(v) for v in self.per_target_auc],
            "params": dict(self.params),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AttackResult:
        """Inverse of `to_dict` (without the scores and the per-row statistic)."""
        top = d.get("most_exposed_group")
        return cls(
            name=str(d["name"]), auc=Estimate.from_dict(d["auc"]),
            tpr_at_fpr={float(a): Estimate.from_dict(e) for a, e in d["tpr_at_fpr"].items()},
            roc=RocCurve.from_dict(d["roc"]),
            groups={str(k): GroupingVulnerability.from_dict(v)
                    for k, v in d.get("groups", {}).items()},
            flagged_groups=[GroupFinding.from_dict(g) for g in d.get("flagged_groups", [])],
            most_exposed_group=None if top is None else GroupFinding.from_dict(top),
            records=[ExposedRecord.from_dict(r) for r in d.get("records", [])],
            targets=np.asarray(d.get("targets", []), dtype=np.int64),
            per_target_auc=np.asarray([_float(v) for v in d.get("per_target_auc", [])],
                                      dtype=float),
            params=dict(d.get("params", {})),
            n_nonmembers=int(d.get("n_nonmembers", 0)),
            n_members=float(d.get("n_members", 0.0)),
        )


@dataclass
class RiskStatement:
    """What the strongest attack means for the people in the training set.

    At FPR ``fpr`` and attacker prior ``prior`` (the share of the candidates who are
    members): ``identified`` = TPR × ``n_train`` people of the training set, and
    ``precision`` = prior·TPR / (prior·TPR + (1 − prior)·FPR), the share of the people
    the attacker calls members who are (at the stated FPR: the conservative threshold's
    FPR is at most that, so the true precision is at least this). Intervals follow the
    TPR's. ``attack`` is None, and the figures NaN, when no attack's TPR is estimable at
    ``fpr`` (``reason`` says why).
    """

    attack: str | None
    fpr: float
    prior: float
    prior_source: str
    n_train: float
    tpr: Estimate
    identified: Estimate
    precision: Estimate
    auc: Estimate
    reason: str | None = None

    def sentence(self) -> str:
        """The statement in words."""
        from assay.report.result import format_rate, format_value

        if self.attack is None:
            return (f"No membership attack's success at {format_rate(self.fpr)} FPR can be "
                    f"stated: {self.reason}.")
        i, p = self.identified, self.precision
        return (f"At {format_rate(self.fpr)} false positives and a prior of "
                f"{format_rate(self.prior)} members among the candidates ({self.prior_source}), "
                f"the strongest attack ({self.attack.upper()}, AUC "
                f"{format_value(self.auc.value)}) identifies about {i.value:,.0f} "
                f"[{i.ci_low:,.0f}, {i.ci_high:,.0f}] of the {self.n_train:,.0f} training "
                f"people, with precision {format_rate(p.value)} [{format_rate(p.ci_low)}, "
                f"{format_rate(p.ci_high)}].")

    def to_dict(self) -> dict[str, Any]:
        """JSON-clean form."""
        return {"attack": self.attack, "fpr": float(self.fpr), "prior": float(self.prior),
                "prior_source": self.prior_source, "n_train": float(self.n_train),
                "tpr": _estimate_dict(self.tpr), "identified": _estimate_dict(self.identified),
                "precision": _estimate_dict(self.precision), "auc": _estimate_dict(self.auc),
                "reason": self.reason}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RiskStatement:
        """Inverse of `to_dict`."""
        return cls(attack=d["attack"], fpr=float(d["fpr"]), prior=float(d["prior"]),
                   prior_source=str(d["prior_source"]), n_train=float(d["n_train"]),
                   **{k: Estimate.from_dict(d[k])
                      for k in ("tpr", "identified", "precision", "auc")},
                   reason=d.get("reason"))


def precision_at(tpr, fpr: float, prior: float):
    """PPV of calling members at (FPR, TPR) when a share ``prior`` of candidates are."""
    tpr = np.asarray(tpr, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return prior * tpr / (prior * tpr + (1 - prior) * fpr)


def risk_statement(attacks: dict[str, AttackResult], fprs: Sequence[float], n_rows: int,
                   fpr: float | None = None, prior: float | None = None) -> RiskStatement:
    """The `RiskStatement` of the attack with the highest estimable TPR at ``fpr``.

    Parameters
    ----------
    attacks : dict of str to AttackResult
    fprs : sequence of float
        The FPRs measured; ``fpr`` must be one of them.
    n_rows : int
        Rows of the audit (the candidates).
    fpr : float, optional
        Default: the smallest of ``fprs`` that some attack's TPR is estimable at (the
        largest of ``fprs`` when none is).
    prior : float, optional
        Share of candidates who are members; default the audit's own membership ratio
        (mean training rows of a target / rows).
    """
    fprs = tuple(float(a) for a in fprs)
    if fpr is None:
        ok = [a for a in sorted(fprs) if any(r.estimable(a) for r in attacks.values())]
        fpr = ok[0] if ok else max(fprs)
    elif float(fpr) not in fprs:
        raise InvalidParameterError(f"risk_fpr must be one of the measured FPRs "
                                    f"({', '.join(f'{a:g}' for a in fprs)}). Got {fpr!r}.")
    fpr = float(fpr)
    first = next(iter(attacks.values()))
    n_train = float(first.n_members)
    if prior is None:
        prior, source = n_train / max(n_rows, 1), "the audit's own share of members"
    else:
        prior = check_scalar(prior, "prior", low=0.0, high=1.0, low_open=True, high_open=True)
        source = "as stated"
    ready = {k: r for k, r in attacks.items()
             if r.estimable(fpr) and np.isfinite(r.tpr_at_fpr[fpr].value)}
    nan = Estimate(np.nan, np.nan, np.nan)
    if not ready:
        return RiskStatement(None, fpr, float(prior), source, n_train, nan, nan, nan,
                             first.auc, reason=first.tpr_reason(fpr) or "no TPR measured")
    name = max(ready, key=lambda k: (ready[k].tpr_at_fpr[fpr].value, ready[k].auc.value))
    t = ready[name].tpr_at_fpr[fpr]
    values = np.array([t.value, t.ci_low, t.ci_high])
    ppv = precision_at(values, fpr, prior)
    return RiskStatement(name, fpr, float(prior), source, n_train, t,
                         Estimate(*(float(v) for v in values * n_train)),
                         Estimate(*(float(v) for v in ppv)), ready[name].auc)


@dataclass
class MIAResult:
    """Result of :func:`run_mia`: one :class:`AttackResult` per attack.

    Attributes
    ----------
    attacks : dict of str to AttackResult
    n_models, n_rows : int
    fprs : tuple of float
    confidence : float
    flag_rule : FlagRule
        The rule every group was flagged by.
    config : dict
        The settings of the run.
    risk : RiskStatement, optional
        The strongest attack's meaning for the training people (`risk_statement`).
    """

    attacks: dict[str, AttackResult]
    n_models: int
    n_rows: int
    fprs: tuple[float, ...]
    confidence: float
    flag_rule: FlagRule = field(default_factory=FlagRule)
    config: dict[str, Any] = field(default_factory=dict)
    risk: RiskStatement | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-clean form: configuration, the flag rule and every attack's figures."""
        return {"n_models": int(self.n_models), "n_rows": int(self.n_rows),
                "fprs": [float(a) for a in self.fprs], "confidence": float(self.confidence),
                "flag_rule": self.flag_rule.to_dict(), "config": dict(self.config),
                "attacks": {k: v.to_dict() for k, v in self.attacks.items()},
                "risk": None if self.risk is None else self.risk.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MIAResult:
        """Inverse of `to_dict`."""
        return cls(attacks={str(k): AttackResult.from_dict(v) for k, v in d["attacks"].items()},
                   n_models=int(d["n_models"]), n_rows=int(d["n_rows"]),
                   fprs=tuple(float(a) for a in d["fprs"]), confidence=float(d["confidence"]),
                   flag_rule=FlagRule.from_dict(d.get("flag_rule", {})),
                   config=dict(d.get("config", {})),
                   risk=None if d.get("risk") is None else RiskStatement.from_dict(d["risk"]))


def roc_grid(n_nonmembers: float, n_points: int = 50) -> np.ndarray:
    """Log-spaced FPR grid from 1/n_nonmembers (at least 1e-5) to 1."""
    low = max(1.0 / max(n_nonmembers, 1.0), 1e-5)
    return np.unique(np.r_[np.logspace(np.log10(low), 0.0, n_points), 1.0])


def summarise_scores(scores: np.ndarray, member: np.ndarray, fprs=DEFAULT_FPRS,
                     confidence: float = 0.95, curves: TargetCurves | None = None
                     ) -> tuple[Estimate, dict[float, Estimate], RocCurve, np.ndarray]:
    """AUC, TPR at FPR ≤ α and the averaged ROC of per-target scores.

    Parameters
    ----------
    scores : ndarray of shape (n_targets, n_rows)
    member : bool ndarray of shape (n_targets, n_rows)
    fprs : sequence of float
    confidence : float, default=0.95
    curves : TargetCurves, optional
        Precomputed sorted scores.

    Returns
    -------
    auc, tpr_at_fpr, roc, per_target_auc
    """
    if curves is None:
        curves = TargetCurves(scores, member)
    fprs = tuple(float(a) for a in fprs)
    grid = roc_grid(float(curves.n_neg.mean()))
    tp, _ = curves.counts_at(_levels(fprs, grid, curves.n_neg, confidence))
    return _summary(curves.auc(), curves.n_pos, curves.n_neg, tp, fprs, grid, confidence)


def _levels(fprs: tuple[float, ...], grid: np.ndarray, n_neg: np.ndarray,
            confidence: float) -> np.ndarray:
    """FPR levels whose TP `_summary` reads: the FPRs, both ends of every point's FPR
    band (`fpr_band`: the row level of its interval), then the grid."""
    levels = np.r_[fprs, grid]
    low, high = fpr_band(levels, float(np.min(n_neg)) if np.size(n_neg) else 0.0, confidence)
    return np.r_[levels, low, high]


def _summary(per_target: np.ndarray, n_pos: np.ndarray, n_neg: np.ndarray, tp: np.ndarray,
             fprs: tuple[float, ...], grid: np.ndarray, confidence: float):
    """`summarise_scores` from every target's AUC, counts and TP at `_levels`.

    A TPR whose FPR the fewest non-members of a target cannot resolve (`tpr_estimable`)
    is NaN, interval included; elsewhere its interval covers rows and reference draws
    (`tpr_estimates`).
    """
    value, low, high = auc_estimates(per_target, n_pos, n_neg, confidence)
    auc = Estimate(float(value[0]), float(low[0]), float(high[0]))
    m = len(fprs) + grid.size
    value, low, high, _, _ = tpr_estimates(tp[:, :m], tp[:, m:2 * m], tp[:, 2 * m:3 * m],
                                           n_pos, confidence)
    n_nonmembers = int(np.min(n_neg)) if np.size(n_neg) else 0
    tpr = {a: (Estimate(float(value[i]), float(low[i]), float(high[i]))
               if tpr_estimable(a, n_nonmembers) else Estimate(np.nan, np.nan, np.nan))
           for i, a in enumerate(fprs)}
    k = len(fprs)
    roc = RocCurve(fpr=grid, tpr=value[k:], tpr_low=low[k:], tpr_high=high[k:])
    return auc, tpr, roc, per_target


def _check_fprs(fprs) -> tuple[float, ...]:
    values = tuple(fprs) if isinstance(fprs, Sequence | np.ndarray) else (fprs,)
    if not values:
        raise InvalidParameterError("fprs must hold at least one FPR in (0, 1). Got ().")
    return tuple(check_scalar(a, "fprs", low=0.0, high=1.0, low_open=True, high_open=True)
                 for a in values)


def _check_attacks(attacks) -> tuple[str, ...]:
    names = (attacks,) if isinstance(attacks, str) else tuple(attacks)
    if not names:
        raise InvalidParameterError(f"attacks must name at least one of {', '.join(ATTACKS)}. "
                                    f"Got ().")
    for name in names:
        check_option(name, "attacks", ATTACKS)
    return tuple(dict.fromkeys(names))


def _pick_targets(population: Population, n_targets: int | None, targets,
                  random_state) -> np.ndarray:
    if targets is not None:
        if n_targets is not None:
            raise InvalidParameterError(f"n_targets must be None when targets are given. "
                                        f"Got n_targets={n_targets!r}.")
        chosen = _check_targets(population, targets)
        if np.unique(chosen).size != chosen.size:
            raise InvalidParameterError(f"targets must be distinct model indices. "
                                        f"Got {targets!r}.")
        return chosen
    if n_targets is None:
        return np.arange(population.n_models)
    n_targets = check_scalar(n_targets, "n_targets", kind=int, low=1, high=population.n_models)
    rng = np.random.default_rng(random_state)
    return np.sort(rng.choice(population.n_models, size=n_targets, replace=False))


def _check_row_ids(row_ids, n_rows: int) -> np.ndarray:
    if row_ids is None:
        return np.arange(n_rows).astype(str)
    ids = np.asarray(row_ids).astype(str)
    if ids.shape != (n_rows,):
        raise DataError(f"row_ids must have one id per population row ({n_rows}). "
                        f"Got shape {ids.shape}.")
    return ids


def run_mia(
    population: Population,
    attacks: Sequence[str] = ("loss", "lira", "rmia"),
    groups: pd.DataFrame | GroupIndex | None = None,
    row_ids=None,
    fprs: Sequence[float] = DEFAULT_FPRS,
    n_targets: int | None = None,
    random_state: int | None = 0,
    *,
    targets: Sequence[int] | None = None,
    min_support: int = 50,
    max_intersection: int | None = None,
    n_permutations: int = 200,
    n_records: int = 20,
    flag_rule: FlagRule | None = None,
    confidence: float = 0.95,
    lira_min_refs: int = LIRA_MIN_REFS,
    rmia_a: float | str = "auto",
    rmia_gamma: float = RMIA_GAMMA,
    keep_scores: bool | None = None,
    backend: str = "local",
    scheduler_address: str | None = None,
    prior: float | None = None,
    risk_fpr: float | None = None,
) -> MIAResult:
    """Run membership-inference attacks on a population, every model in turn as target.

    Each attack is scored a block of targets at a time and every figure is gathered from
    the blocks as they come (`stream_figures`): beyond the population, memory is O(N)
    per attack plus one block, not O(targets x N).

    Parameters
    ----------
    population : Population
        K models with known memberships; each attacked target uses the other models as
        references.
    attacks : sequence of str, default=("loss", "lira", "rmia")
        Any of ``ATTACKS``.
    groups : DataFrame or GroupIndex, optional
        Protected attributes (one row per population row), or their
        `assay.groups.GroupIndex`: per-group figures and flags for every attribute and
        every intersection.
    row_ids : array-like of shape (n_rows,), optional
        Identifiers of the rows for the records (default: row index).
    fprs : sequence of float, default=(0.1, 0.01, 0.001)
        FPR levels of the TPR figures; the largest also sets the thresholds that flag
        records.
    n_targets : int, optional
        Attack only this many randomly chosen models (default: all).
    random_state : int or None, default=0
        Seed for the choice of targets and the permutation test.
    targets : sequence of int, optional
        Attack exactly these models (not with ``n_targets``).
    min_support : int, default=50
        Groups with fewer rows are reported without figures, never flagged.
    max_intersection : int, optional
        Largest intersection of attributes (default: all attributes; only with a
        DataFrame).
    n_permutations : int, default=200
        Permutations of the group test (0: p-values 1, nothing flagged).
    n_records : int, default=20
        Number of records listed per attack.
    flag_rule : FlagRule, optional
        When a group is flagged; default ``FlagRule(alpha=0.05, min_difference=0.05,
        direction="greater")``: p < 0.05 and AUC at least 0.05 above the overall AUC.
    confidence : float, default=0.95
        Level of every interval.
    lira_min_refs : int, default=32
        Fewer references per side → LiRA uses one pooled variance.
    rmia_a : "auto" or float, default="auto"
        RMIA's offline parameter; "auto" tunes it for offline RMIA on reference models,
        never on the target (`tune_rmia_a`), and records the values in the attack's
        params.
    rmia_gamma : float, default=1.0
        RMIA's pairwise likelihood-ratio threshold.
    keep_scores : bool or None, default=None
        Keep each attack's raw scores in `AttackResult.scores` (targets x rows float64).
        None: only when targets x rows is at most ``KEEP_SCORES_CELLS`` (4,194,304).
    backend : {"local", "dask"}, default="local"
        Where the blocks of scores are computed. "dask": on a dask.distributed cluster
        (needs ``pip install "assay[dask]"``), with futures: the per-row leave-one-out
        sums are reduced from partial sums per block of models, sent once to every
        worker, and each task gets the probabilities of its own targets and their
        complementary partners only, so no worker holds the population. A population
        on disk (``probs`` a read-only `numpy.memmap`) is read by the workers from its
        file, which they must see under the same path (a `LocalCluster`, or shared
        storage). At most two tasks per worker are in flight and blocks are read back
        in target order: the figures equal the local run's bit for bit. The choices
        made on reference models (RMIA's a, LiRA's variance) stay in this process.
    scheduler_address : str, optional
        Address of a running Dask scheduler ("tcp://host:8786"); default: a new
        `LocalCluster` with one single-threaded worker per core.
    prior : float, optional
        Share of members among an attacker's candidates for the risk statement
        (default: the audit's own, mean training rows / rows).
    risk_fpr : float, optional
        FPR of the risk statement, one of ``fprs`` (default: the smallest estimable).

    Returns
    -------
    MIAResult
    """
    check_backend(backend, scheduler_address)
    _check_population(population, False, "any")
    names = _check_attacks(attacks)
    fprs = _check_fprs(fprs)
    confidence = check_scalar(confidence, "confidence", low=0.0, high=1.0, low_open=True,
                              high_open=True)
    min_support = check_scalar(min_support, "min_support", kind=int, low=1)
    n_permutations = check_scalar(n_permutations, "n_permutations", kind=int, low=0,
                                  high=MAX_RESAMPLES)
    n_records = check_scalar(n_records, "n_records", kind=int, low=0)
    rule = check_flag_rule(flag_rule)
    if prior is not None:
        check_scalar(prior, "prior", low=0.0, high=1.0, low_open=True, high_open=True)
    if risk_fpr is not None and float(risk_fpr) not in fprs:
        raise InvalidParameterError(f"risk_fpr must be one of the measured FPRs "
                                    f"({', '.join(f'{a:g}' for a in fprs)}). Got {risk_fpr!r}.")
    if keep_scores is not None and not isinstance(keep_scores, bool | np.bool_):
        raise InvalidParameterError(f"keep_scores must be True, False or None. "
                                    f"Got {keep_scores!r}.")
    index = None if groups is None else check_group_index(groups, population.n_rows,
                                                          max_intersection)
    ids = _check_row_ids(row_ids, population.n_rows)
    chosen = _pick_targets(population, n_targets, targets, random_state)
    if keep_scores is None:
        keep_scores = chosen.size * population.n_rows <= KEEP_SCORES_CELLS
    member = population.member[chosen]
    params = {"lira_min_refs": lira_min_refs, "rmia_a": rmia_a, "rmia_gamma": rmia_gamma}
    if isinstance(rmia_a, str):
        check_option(rmia_a, "rmia_a", ("auto",))
    else:
        check_scalar(rmia_a, "rmia_a", low=0.0, high=1.0)
    results = {}
    with open_runner(backend, scheduler_address) as runner:
        scorer = _Scorer(population, runner)  # one set of per-row sums per signal
        for name in names:
            attack_params = _attack_params(population, name, params, random_state)
            scorer_params = dict(params)
            if name == "rmia_offline" and rmia_a == "auto":
                scorer_params["rmia_a"] = attack_params.pop("a_per_model")[chosen]
            if name.startswith("lira"):
                scorer_params["lira_per_example"] = \
                    attack_params.pop("per_example_per_model")[chosen]
            merged = {"lira_min_refs": LIRA_MIN_REFS, "rmia_a": "auto",
                      "rmia_gamma": RMIA_GAMMA, **scorer_params}
            blocks = _score_blocks(population, name, chosen, merged, scorer)
            results[name] = _evaluate_attack(
                name, blocks, member, chosen, fprs, confidence, index, ids,
                min_support=min_support, n_records=n_records, params=attack_params,
                keep_scores=bool(keep_scores))
    if index is not None:
        # One test for every attack (a column each) and every grouping.
        tests = permutation_test(np.stack([r.statistic for r in results.values()], axis=1),
                                 index, min_support=min_support,
                                 n_permutations=n_permutations, direction=rule.direction,
                                 random_state=random_state)
        for column, result in enumerate(results.values()):
            _apply_tests(result, tests, rule, column)
    config = {"attacks": list(names), "n_targets": int(chosen.size),
              "random_state": random_state, "min_support": int(min_support),
              "max_intersection": max_intersection, "n_permutations": int(n_permutations),
              "n_records": int(n_records), **params}
    risk = risk_statement(results, fprs, population.n_rows, risk_fpr, prior)
    return MIAResult(attacks=results, n_models=population.n_models, n_rows=population.n_rows,
                     fprs=fprs, confidence=float(confidence), flag_rule=rule, config=config,
                     risk=risk)


def _attack_params(population: Population, name: str, params: dict,
                   random_state: int | None) -> dict[str, Any]:
    """Settings an attack runs with, as recorded in the result (offline RMIA's tuned a
    per model rides along under ``a_per_model`` and is taken out before recording)."""
    if name.startswith("lira"):
        online = name == "lira"
        per_example, info = lira_variance_plan(population, online, "auto",
                                               params["lira_min_refs"], random_state)
        return {"online": online, **info, "min_refs": params["lira_min_refs"],
                "per_example_per_model": per_example}
    if name.startswith("rmia"):
        a = params["rmia_a"]
        if name == "rmia_offline" and a == "auto":
            a_per_model, info = tune_rmia_a(population, random_state=random_state)
            return {"online": False, "a": "tuned on reference models", "a_tuning": info,
                    "gamma": params["rmia_gamma"], "a_per_model": a_per_model}
        return {"online": name == "rmia", "a": RMIA_A if a == "auto" else float(a),
                "gamma": params["rmia_gamma"]}
    return {}


def _evaluate_attack(name: str, blocks: Iterator[tuple[np.ndarray, np.ndarray]],
                     member: np.ndarray, targets: np.ndarray,
                     fprs: tuple[float, ...], confidence: float, index: GroupIndex | None,
                     row_ids: np.ndarray, *, min_support: int, n_records: int,
                     params: dict[str, Any], keep_scores: bool = False) -> AttackResult:
    """Every figure of one attack from its blocks of scores, each target sorted once, a
    block of targets at a time as the scorer yields them (`stream_figures`: memory bounded
    by the block, not by K · N); the scores are kept only with `keep_scores`. The group
    test and flags are applied afterwards (`_apply_tests`), one test serving every
    attack."""
    n_neg = (~member).sum(axis=1)
    grid = roc_grid(float(n_neg.mean()))
    kept: list[np.ndarray] = []

    def scores_of(blocks):
        for _, block in blocks:
            if keep_scores:
                kept.append(block)
            yield block

    with ahead(blocks) as early:
        figures = stream_figures(scores_of(early), member,
                                 _levels(fprs, grid, n_neg, confidence), index=index,
                                 group_fprs=fprs, record_fpr=max(fprs))
    scores = np.concatenate(kept) if keep_scores else None
    auc, tpr, roc, per_target = _summary(figures.auc, figures.n_pos, figures.n_neg,
                                         figures.tp, fprs, grid, confidence)
    statistic = figures.statistic
    by_group = {} if index is None else figures.group_figures(
        index, fprs, min_support=min_support, confidence=confidence)
    records = figures.records(row_ids, index, n_records)
    return AttackResult(name=name, auc=auc, tpr_at_fpr=tpr, roc=roc, groups=by_group,
                        records=records, targets=targets, per_target_auc=per_target,
                        params=params, n_nonmembers=int(n_neg.min()) if n_neg.size else 0,
                        n_members=float(figures.n_pos.mean()) if n_neg.size else 0.0,
                        statistic=statistic, scores=scores)


def _apply_tests(result: AttackResult, tests, rule: FlagRule, column: int) -> None:
    """Differences, p-values and flags of every group of one attack, and its headline."""
    apply_group_tests(result.groups, tests, result.auc.value, rule, column)
    result.flagged_groups = flagged_groups(result.groups)
    result.most_exposed_group = most_exposed_group(result.groups)
