"""Helpers shared by several test modules (pytest puts tests/ on sys.path)."""

import contextlib
import socket
import textwrap
import threading
import time

import numpy as np


def balanced_member(n_models, n_rows, rng):
    """Complementary pairs of random halves, as PopulationPlan.balanced builds them."""
    member = np.zeros((n_models, n_rows), bool)
    for k in range(0, n_models, 2):
        half = rng.random(n_rows) < 0.5
        member[k], member[k + 1] = half, ~half
    return member


#: A fit slow enough to be killed half-way: 16 models in chunks of 2, cached under
#: argv[1], probabilities saved to argv[2]; argv[3] == "disk" puts the population on disk.
#: Prints the models loaded from the cache, those fitted, and where the population lives.
KILLABLE_FIT = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from assay.learners import LogisticRegressionLearner
    from assay.engine import PopulationPlan, fit_population

    class SlowLogreg(LogisticRegressionLearner):
        def fit_predict(self, *args):
            time.sleep(0.3)  # long enough to be killed half-way
            return super().fit_predict(*args)

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5)).astype(np.float32)
    y = (X[:, 0] + rng.normal(size=300) > 0).astype(np.int64)
    plan = PopulationPlan.balanced(300, 16, random_state=0)
    disk = sys.argv[3:] == ["disk"]
    pop = fit_population(X, y, SlowLogreg(chunk_size=2, n_threads=1), plan,
                         cache_dir=sys.argv[1], progress=False, data_fingerprint="toy",
                         memory_budget=1e-9 if disk else None)
    np.save(sys.argv[2], pop.probs)
    print(pop.info["n_loaded_from_cache"], pop.info["n_fitted"], pop.info["store"])
    """
)


@contextlib.contextmanager
def live_server(app):
    """Serve `app` with uvicorn on a free loopback port in a thread; yield the port."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def start_chunked_upload(sock, port: int) -> bytes:
    """Send the head of a chunked multipart upload of a CSV to ``/api/upload`` over
    `sock`; return one 64 KiB chunk of CSV rows, framed, for the caller to send on."""
    boundary = "bnd123"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"big.csv\"\r\nContent-Type: text/csv\r\n\r\na,b\r\n").encode()
    sock.sendall(f"POST /api/upload HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                 f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                 f"Transfer-Encoding: chunked\r\n\r\n".encode())
    sock.sendall(f"{len(head):x}\r\n".encode() + head + b"\r\n")
    data = b"1,2\n" * 16384
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def fairness_table(n=3000, seed=0):
    """Features, a label that depends on the features and on sex and race, and groups."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    A = pd.DataFrame({"sex": rng.choice(["F", "M"], n, p=[0.45, 0.55]),
                      "race": rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1])})
    X = rng.normal(size=(n, 6)).astype(np.float32)
    X[:, 5] = (A["sex"] == "M").to_numpy()
    logit = 1.2 * X[:, 0] - 0.8 * X[:, 1] + 0.7 * (A["sex"] == "M") - 0.6 * (A["race"] == "c")
    y = (logit + rng.logistic(size=n) * 0.7 > 0.3).astype(np.int64)
    return X, y, A


def wait_for_job(client, url: str, seconds: float = 180) -> dict:
    """The web app job's status at ``url`` once it is done or failed (or ``seconds`` pass)."""
    deadline = time.monotonic() + seconds
    while True:
        status = client.get(url).json()
        if status["state"] in ("done", "error") or time.monotonic() > deadline:
            return status
        time.sleep(0.3)
