"""Distribution strategies: which `tf.distribute` strategy a run uses, and what follows from it.

`make_distribution(name)` turns a `--distribution` value into a strategy:

- `auto`: a TPU when a TPU resolver answers (Colab / Cloud TPU VM environment), else
  Mirrored over all local GPUs when there are several, else one device (GPU or CPU);
- `one_device`: the first GPU, or the CPU (TensorFlow's default strategy);
- `mirrored`: all local GPUs, or all logical CPU devices when there is no GPU;
- `multi_worker`: `MultiWorkerMirroredStrategy` from the standard `TF_CONFIG` variable
  (Vertex AI, the Kubernetes operators and TF's own docs set it);
- `tpu`: `TPUStrategy` on the resolved TPU (see README "TPU recipe").

Create the strategy first: multi-worker collectives (and logical device splits) must be
configured before TensorFlow runs anything else, so `train` creates it before reading data.
The batch size a user gives is per replica; datasets are batched at the global size
(per replica x replicas) and schedules count global steps.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from tfhub_transfer.errors import ConfigError

DISTRIBUTIONS = ("auto", "one_device", "mirrored", "multi_worker", "tpu")
# Signs of a TPU runtime; without one of them `auto` never contacts a TPU resolver,
# which could otherwise wait on a metadata server that does not exist.
_TPU_ENVIRONMENT = ("TPU_NAME", "COLAB_TPU_ADDR", "TPU_WORKER_ID", "TPU_ACCELERATOR_TYPE")


def make_distribution(name: str | tf.distribute.Strategy | None = "auto") -> tf.distribute.Strategy:
    """The strategy for a `--distribution` value (a Strategy passes through unchanged)."""
    if isinstance(name, tf.distribute.Strategy):
        return name
    name = name or "auto"
    if name not in DISTRIBUTIONS:
        raise ConfigError(f"--distribution must be one of {DISTRIBUTIONS}, not {name!r}")
    if name == "auto":
        return _auto()
    return {"one_device": _one_device, "mirrored": _mirrored, "multi_worker": _multi_worker,
            "tpu": _tpu}[name]()


def _auto() -> tf.distribute.Strategy:
    if any(os.environ.get(k) for k in _TPU_ENVIRONMENT) or os.path.exists("/dev/accel0"):
        try:
            return _tpu()
        except ConfigError:
            pass
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return _mirrored()
    return _one_device()


def _one_device() -> tf.distribute.Strategy:
    # TensorFlow's default strategy places work on the first GPU, else the CPU. It, not
    # OneDeviceStrategy, is the single-device strategy BackupAndRestore supports.
    return tf.distribute.get_strategy()


def _mirrored() -> tf.distribute.Strategy:
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([d.name for d in devices])


def _multi_worker() -> tf.distribute.Strategy:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise ConfigError(
            "--distribution multi_worker reads the cluster from the TF_CONFIG environment variable, "
            'which is not set; e.g. TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", '
            '"host2:12345"]}, "task": {"type": "worker", "index": 0}}\' on the first worker'
        )
    try:
        tf_config = json.loads(raw)
        tf_config["cluster"]["worker"]
        tf_config["task"]["type"], tf_config["task"]["index"]
    except (ValueError, KeyError, TypeError) as err:
        raise ConfigError(
            f"TF_CONFIG is not valid ({err!r}); it needs cluster.worker (a list of host:port) "
            "and task.type / task.index"
        ) from None
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except (RuntimeError, ValueError) as err:
        raise ConfigError(
            f"could not start the multi-worker strategy: {err}. Create it before any other "
            "TensorFlow work in the process (train() and the CLI do)."
        ) from None


def _tpu() -> tf.distribute.Strategy:
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=os.environ.get("TPU_NAME", ""))
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as err:
        raise ConfigError(
            f"--distribution tpu: no TPU answered ({err}). On Colab pick a TPU runtime; on a Cloud "
            "TPU VM set TPU_NAME=local; elsewhere use --distribution auto."
        ) from None
    # Hub handles then stay in their uncompressed GCS form, which a TPU worker reads directly.
    os.environ.setdefault("TFHUB_MODEL_LOAD_FORMAT", "UNCOMPRESSED")
    return tf.distribute.TPUStrategy(resolver)


def global_batch_size(per_replica: int, strategy: tf.distribute.Strategy) -> int:
    """The batch the input pipeline yields: `per_replica` examples for each replica in sync."""
    return per_replica * strategy.num_replicas_in_sync


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True where files should be written: everywhere but non-chief multi-worker tasks."""
    return bool(strategy.extended.should_checkpoint)


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and (
        strategy.extended._in_multi_worker_mode()  # noqa: SLF001 (no public accessor)
    )


def describe(strategy: tf.distribute.Strategy) -> str:
    """One line for progress output: the strategy's class and replica count."""
    name = type(strategy).__name__.lstrip("_").replace("DefaultDistributionStrategy", "one device")
    return f"{name} with {strategy.num_replicas_in_sync} replica(s)"
