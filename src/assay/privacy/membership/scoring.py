"""The scoring engine of the membership attacks: references read off shared sums.

-------------------------
Every attack is scored a block of targets at a time, from per-row sums over all models
(two passes over blocks of models: the per-row mean, then the centred sums IN and OUT).
``backend="batched"`` computes the blocks here; ``backend="dask"`` (`run_mia`,
`attack_scores`) computes the partial sums of each block of models and the scores of each
block of targets on a dask.distributed cluster with futures. A task receives the O(N)
sums (scattered once, to every worker) and the rows of its own models only: each block of
probabilities and memberships goes to the cluster once per run and stays there for every
pass and attack (for a population on disk, the file's name: the worker reads its rows),
and with more than two classes so does each block's signal, computed there once. The
partial sums are added here in block order, and blocks come back in target order, so
both backends give the same numbers bit for bit. The choices made on reference models
(RMIA's a, LiRA's variance) run here on their small subsamples.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import log_ndtr

from assay._validation import DataError, InvalidParameterError
from assay.engine import Population
from assay.engine.runners import DaskRunner, LocalRunner

# Variances below this are treated as this (a model that outputs a constant).
_VAR_FLOOR = 1e-6
#: RMIA's likelihood-ratio threshold γ.
RMIA_GAMMA = 1.0
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
    if sums is None or extra is None:  # a caller's error: LiRA and RMIA need both
        raise ValueError(f"{spec.attack} scores need the reference sums and each target's "
                         f"parameter.")
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
            f"population must be an assay.engine.Population. "
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


# --------------------------------------------------------------------------- block kernels

def _blocks_of(t: np.ndarray, n_rows: int, n_classes: int = 2) -> list[np.ndarray]:
    """Targets `t` in blocks of about 256k (target, row) cells (a block's temporaries
    stay in cache: larger blocks measured 1.7x slower on Adult), and of at most
    `_BLOCK_BYTES` of probabilities."""
    n_rows = max(n_rows, 1)
    size = max(1, min((1 << 18) // n_rows, _BLOCK_BYTES // (n_rows * max(n_classes, 1) * 4)))
    return [t[i:i + size] for i in range(0, t.size, size)]


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
