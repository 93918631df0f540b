"""Run ML Privacy Meter's own per-model pipeline, unmodified, on Location-30.

Called by privacy_meter_training.py under a Python that has PM's requirements
(torchvision, transformers, peft): PM's `models.utils.prepare_models`, the function its
`run_mia.py` uses to train reference models. Per model it builds its two DataLoaders
(get_dataloader over TabularDataset), trains with `trainers.default_trainer.train`
(which evaluates the test loader every epoch), runs inference on test and train, and
pickles the state_dict. Times are PM's own ("Training model %s took %s seconds"),
plus our wall clock around each model including the pickle.

    python pm_prepare_models.py PM_REPO DATA.csv.gz MEMBERS.npy N_MODELS OUT.json
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import tempfile
import time


def main(pm_repo, data, members_path, n_models, out):
    sys.path.insert(0, pm_repo)
    os.chdir(pm_repo)
    import numpy as np
    import pandas as pd
    import torch
    import yaml
    from dataset import TabularDataset
    from models import utils as pm_utils

    df = pd.read_csv(data)
    X = df.drop(columns="label").to_numpy(np.float32)
    y = (df["label"].to_numpy() - 1).astype(np.int64)
    member = np.load(members_path)[:n_models]

    # PM knows no Location-30 shape; register it (data, not code) and use its
    # tabular defaults (configs/purchase.yaml), on the CPU.
    pm_utils.INPUT_OUTPUT_SHAPE["location30"] = [X.shape[1], 30]
    with open(os.path.join(pm_repo, "configs", "purchase.yaml")) as f:
        configs = yaml.safe_load(f)
    configs["data"]["dataset"] = "location30"
    configs["train"]["device"] = "cpu"
    configs["audit"]["device"] = "cpu"

    splits = [{"train": np.nonzero(m)[0], "test": np.nonzero(~m)[0]} for m in member]

    took = []

    class Catch(logging.Handler):
        def emit(self, record):
            msg = record.getMessage()
            hit = re.match(r"Training model \d+ took ([\d.eE+-]+) seconds", msg)
            if hit:
                took.append(float(hit.group(1)))

    logger = logging.getLogger("pm_prepare_models")
    logger.setLevel(logging.INFO)
    logger.addHandler(Catch())
    dataset = TabularDataset(X, y)
    torch.manual_seed(0)
    walls, accs = [], []
    with tempfile.TemporaryDirectory() as log_dir:
        for i, split in enumerate(splits):  # one call per model, so each gets a wall time
            t0 = time.perf_counter()
            models = pm_utils.prepare_models(
                log_dir, dataset, [split], member[i:i + 1], configs, logger)
            walls.append(time.perf_counter() - t0)
            with torch.no_grad():
                pred = models[0](torch.tensor(X[~member[i]])).argmax(1).numpy()
            accs.append(float((pred == y[~member[i]]).mean()))
    res = {"pm_took_s": took, "wall_s": walls, "heldout_acc": accs,
           "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
           "config_train": configs["train"]}
    with open(out, "w") as f:
        json.dump(res, f, indent=2)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
