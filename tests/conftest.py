import collections
import gc
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# The tests' encoders are tiny (H=32): oneDNN's per-op setup costs more than it saves there (a tiny
# train() took 10 % longer with it). Set before TensorFlow loads; processes the tests start inherit it.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Tests check values, not speed: Grappler's graph rewrites cost 2-3 s per traced model on tiny
# encoders and change no result the tests assert (TFHUB_TRANSFER_TEST_GRAPPLER=1 keeps them).
if os.environ.get("TFHUB_TRANSFER_TEST_GRAPPLER") != "1":
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
# TensorFlow and Keras leave millions of long-lived objects; the default thresholds had the garbage
# collector spend about 35 s per worker re-scanning them (measured with gc.callbacks).
gc.set_threshold(50_000, 20, 20)
from shared_encoders import shared_tiny_bert  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# Processes the tests start find the package and tests/startup/sitecustomize.py (Grappler off there too).
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(ROOT / "tests" / "startup"), str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
SHARED_DATA = ROOT.parent / "shared" / "data"
DEMO_DATA = ROOT / "tfhub_transfer" / "demo_data" / "reviews.tsv"


@pytest.fixture(scope="session")
def tiny_encoder() -> Path:
    """A 2-layer, H=32 random BERT pair written by the package's own writer (shared by the workers)."""
    return shared_tiny_bert()


@pytest.fixture(scope="session")
def default_encoder() -> Path:
    """The converted built-in encoder (converted into the user cache once)."""
    from tfhub_transfer.encoders.build.default import ensure_default_encoder
    from tfhub_transfer.errors import EncoderError

    try:
        return ensure_default_encoder(verbose=False)
    except EncoderError as err:
        pytest.skip(f"default encoder unavailable: {err}")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA} (the ../shared checkout is absent)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def demo_data() -> Path:
    return DEMO_DATA


@pytest.fixture(scope="session")
def tiny_encoder_no_dropout() -> Path:
    """The tiny fixture without dropout: runs that must match bit for bit (resume, replicas)."""
    return shared_tiny_bert(dropout=0.0)


def run_python(script: str, *args, env: dict | None = None, timeout: int = 600):
    """Runs `script` in a fresh interpreter (TensorFlow device setup needs a new process)."""
    return run_pythons([(script, *args)], env=env, timeout=timeout)[0]


def run_pythons(runs: list[tuple], env: dict | None = None, timeout: int = 600) -> list:
    """Runs several `(script, *args)` at once, each in a fresh interpreter; their CompletedProcesses."""
    import subprocess
    import sys

    full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
    procs = [subprocess.Popen([sys.executable, "-c", script, *map(str, args)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=full_env) for script, *args in runs]
    done = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=timeout)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr))
    return done


def free_ports(count: int) -> list[int]:
    """`count` TCP ports free on 127.0.0.1 now (for a test cluster's workers)."""
    import socket

    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_workers(script: str, args_of, count: int = 2) -> list:
    """Starts a `MultiWorkerMirroredStrategy` cluster on 127.0.0.1: `count` fresh interpreters running
    `script`, worker i with arguments `args_of(i)` and its own TF_CONFIG. Returns the Popen objects."""
    import json
    import subprocess
    import sys

    workers = [f"127.0.0.1:{p}" for p in free_ports(count)]
    procs = []
    for index in range(count):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_CONFIG=json.dumps(tf_config))
        procs.append(subprocess.Popen([sys.executable, "-c", script, *map(str, args_of(index))],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    return procs


def finish_workers(procs: list, timeout: int = 420) -> list[tuple[int, str, str]]:
    """(returncode, stdout, stderr) of each process in order; all are killed if any overruns `timeout`."""
    try:
        outputs = [proc.communicate(timeout=timeout) for proc in procs]
        return [(proc.returncode, *output) for proc, output in zip(procs, outputs)]
    finally:
        for proc in procs:
            proc.kill()


def last_json(finished: list[tuple[int, str, str]]) -> list[dict]:
    """Each finished process's last stdout line as JSON, asserting it exited 0 (its stderr tail if not)."""
    import json

    for returncode, _, stderr in finished:
        assert returncode == 0, stderr[-3000:]
    return [json.loads(stdout.strip().splitlines()[-1]) for _, stdout, _ in finished]


def pytest_collection_modifyitems(config, items):
    """Files with the most `slow` tests (those over about 25 s) first: the parallel workers (`-n 2
    --dist loadfile --no-loadscope-reorder`, which keeps this order) start the long runs early and end
    on short files, instead of one worker finishing a long file while the other waits."""
    slow_tests = collections.Counter(item.path for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow_tests[item.path])


@pytest.fixture(scope="module", autouse=True)
def _fresh_keras_state_per_module():
    """Each test file starts from a clean Keras session: a worker runs many files, and models left
    from earlier files only grow its memory (and the garbage collector's work)."""
    yield
    import tf_keras

    tf_keras.backend.clear_session()
    gc.collect()
