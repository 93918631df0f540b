"""A model assay did not train, audited through a predictions file, measures the same
leakage as assay's own audit of the same learner.

On Location-30 (30 classes, 446 binary features) a plain torch MLP, written here without
assay and with `MLPLearner`'s defaults, is trained on a known random half; its
predictions go through a CSV file, assay trains 16 reference MLPs and attacks it. The
LiRA and RMIA AUCs must agree with `run_mia` on a population of 16 MLPs trained by assay
(each within the other's confidence interval).
"""

import math

import numpy as np
import pandas as pd
import pytest

from assay.data import load
from assay.engine import PopulationPlan, fit_population
from assay.engine.predictions import read_predictions, reference_plan
from assay.learners import MLPLearner
from assay.privacy.membership.audited_model import attack_target
from assay.privacy.membership.mia import run_mia

K = 16
ATTACKS = ("lira", "rmia")
# One torch thread everywhere: on a 2-core machine busy with other work, two torch
# threads per fit took this test 19.5 min, one thread 1.7 min.
THREADS = 1


def train_plain_torch_mlp(X, y, member, n_classes, seed, *, hidden, batch_size, lr, alpha,
                          max_epochs, tol, n_iter_no_change):
    """One-hidden-layer ReLU MLP, Adam, L2 on weights, scikit-learn's stopping rule.

    Written from `MLPLearner`'s documented rules with plain torch (nn.Linear, torch's
    Adam); nothing of assay's training code is used.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        return _train(torch, X, y, member, n_classes, seed, hidden, batch_size, lr, alpha,
                      max_epochs, tol, n_iter_no_change)
    finally:
        torch.set_num_threads(previous)


def _train(torch, X, y, member, n_classes, seed, hidden, batch_size, lr, alpha, max_epochs,
           tol, n_iter_no_change):
    """The training loop of `train_plain_torch_mlp` (under its thread setting)."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # nn.Linear's initialisation: U(±1/sqrt(fan_in))
    model = torch.nn.Sequential(torch.nn.Linear(X.shape[1], hidden), torch.nn.ReLU(),
                                torch.nn.Linear(hidden, n_classes))
    weights = [model[0].weight, model[2].weight]
    biases = [model[0].bias, model[2].bias]
    optimiser = torch.optim.Adam([{"params": weights, "weight_decay": alpha / batch_size},
                                  {"params": biases, "weight_decay": 0.0}], lr=lr)
    X_t = torch.tensor(X, dtype=torch.float32)
    y_t = torch.tensor(y, dtype=torch.long)
    rows = torch.tensor(np.flatnonzero(member))
    best, stale = math.inf, 0
    for _ in range(max_epochs):
        order = rows[torch.randperm(len(rows), generator=generator)]
        total = 0.0
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            # alpha / 2 * ||W||^2 / n_b as Adam's coupled weight decay alpha / n_b.
            optimiser.param_groups[0]["weight_decay"] = alpha / len(batch)
            loss = torch.nn.functional.cross_entropy(model(X_t[batch]), y_t[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(batch)
        epoch_loss = total / len(order)
        stale = stale + 1 if epoch_loss > best - tol else 0
        best = min(best, epoch_loss)
        if stale > n_iter_no_change:
            break
    with torch.no_grad():
        return torch.softmax(model(X_t), dim=1).double().numpy()


@pytest.mark.slow
def test_predictions_file_audit_matches_assays_own_audit(data_home, tmp_path):
    dataset = load("location30", data_home=data_home)
    n = dataset.n_rows
    member = np.zeros(n, bool)
    member[np.random.default_rng(7).permutation(n)[: n // 2]] = True

    defaults = MLPLearner()  # the hyper-parameters only
    hyper = {name: getattr(defaults, name) for name in (
        "hidden", "batch_size", "lr", "alpha", "max_epochs", "tol", "n_iter_no_change")}
    probs = train_plain_torch_mlp(dataset.X, dataset.y, member, dataset.n_classes, seed=7,
                                  **hyper)
    assert (probs.argmax(1) == dataset.y)[member].mean() > 0.95  # it memorises its half

    # The file a user would write: rows shuffled, matched back by row_id.
    frame = pd.DataFrame(probs, columns=[f"proba_{c}" for c in dataset.classes])
    frame.insert(0, "row_id", dataset.row_ids)
    frame["in_train"] = member.astype(int)
    path = tmp_path / "my_model.csv"
    frame.sample(frac=1, random_state=0).to_csv(path, index=False)
    target = read_predictions(path, dataset)
    np.testing.assert_array_equal(target.member, member)
    np.testing.assert_allclose(target.probs, probs, rtol=1e-9, atol=1e-12)

    plan = reference_plan(target, K, random_state=1)
    references = fit_population(dataset.X, dataset.y, "mlp", plan, n_jobs=THREADS,
                                n_classes=dataset.n_classes, progress=False)
    theirs = attack_target(references, target, attacks=ATTACKS, n_permutations=20)

    own = fit_population(dataset.X, dataset.y, "mlp",
                         PopulationPlan.balanced(n, K, random_state=2), n_jobs=THREADS,
                         n_classes=dataset.n_classes, progress=False)
    ours = run_mia(own, ATTACKS, n_permutations=20)

    for attack in ATTACKS:
        a, b = theirs.attacks[attack].auc, ours.attacks[attack].auc
        assert a.value > 0.6 and b.value > 0.6, (attack, a, b)  # a real leak is measured
        assert b.ci_low <= a.value <= b.ci_high, (attack, a, b)
        assert a.ci_low <= b.value <= a.ci_high, (attack, a, b)
