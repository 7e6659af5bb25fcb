"""Distribution: one device, MirroredStrategy over GPUs (or logical CPUs), MultiWorkerMirroredStrategy.

``strategy="auto"`` mirrors over every GPU when more than one is visible and otherwise uses the default
(one-device) strategy. ``cpu_replicas=N`` splits the CPU into N logical devices so that the mirrored path
runs without GPUs; it must happen before TensorFlow initialises its runtime (in a fresh process: apps/train.py
does it first thing). ``"multiworker"`` reads the cluster from the TF_CONFIG environment variable, with a
longer heartbeat timeout than TensorFlow's own (HEARTBEAT_TIMEOUT_S, or ``heartbeat_timeout_s``).
"""

import json
import os

import tensorflow as tf

STRATEGIES = ("auto", "mirrored", "multiworker", "default")

# How long a worker may go without a heartbeat before every worker aborts. With TensorFlow's own setting, a
# worker stopped for 8 s (SIGSTOP) aborted a two-worker run and one stopped for 5 s did not; on a busy 2-core
# machine two local workers starved of the CPU aborted the same way ("heartbeat timeout", docs/training.md).
# A worker that crashes is still noticed at once: its connections close.
HEARTBEAT_TIMEOUT_S = 60


def configure_cpu_replicas(n):
    """Splits the first physical CPU into `n` logical devices. Call before TensorFlow initialises."""
    n = int(n or 0)
    if n <= 1:
        return
    cpus = tf.config.list_physical_devices("CPU")
    current = tf.config.get_logical_device_configuration(cpus[0])
    if current and len(current) == n:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(n)])
    except RuntimeError:
        raise RuntimeError(
            f"cpu_replicas={n} needs {n} logical CPU devices, which can only be configured before TensorFlow "
            "initialises. Run it in a fresh process (apps/train.py --cpu-replicas N, or call "
            "keras_cnns.training.configure_cpu_replicas(N) before building any model).") from None


def configure_coordination(heartbeat_timeout_s):
    """TensorFlow's coordination service for the TF_CONFIG cluster, configured as MultiWorkerMirroredStrategy
    configures it (the chief, or else worker 0, leads it; the chief and worker jobs take part) but with a
    heartbeat timeout of `heartbeat_timeout_s`. The strategy keeps a service configured before it is made; one
    configured already in this process (by the caller, or an earlier strategy) is left as it is."""
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.eager import context

    if context.context().coordination_service is not None:
        return
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    spec = resolver.cluster_spec()
    jobs = [j for j in ("chief", "worker") if j in spec.jobs]
    if resolver.task_type not in jobs or "ps" in spec.jobs:
        return  # another task type, or parameter servers (which would lead): left to the strategy
    context.context().configure_coordination_service(
        service_type="standalone", service_leader=f"/job:{jobs[0]}/replica:0/task:0",
        coordinated_jobs=[coordination_config_pb2.CoordinatedJob(name=j, num_tasks=spec.num_tasks(j)) for j in jobs],
        heartbeat_timeout_in_ms=int(heartbeat_timeout_s * 1000))


def heartbeat_timeout(heartbeat_timeout_s=None):
    """The heartbeat timeout a multi-worker run uses: `heartbeat_timeout_s`, or HEARTBEAT_TIMEOUT_S for None."""
    return HEARTBEAT_TIMEOUT_S if heartbeat_timeout_s is None else heartbeat_timeout_s


def make_strategy(name="auto", cpu_replicas=0, heartbeat_timeout_s=None):
    """Returns a tf.distribute.Strategy for `name` in STRATEGIES. `heartbeat_timeout_s` (multiworker only; None:
    HEARTBEAT_TIMEOUT_S) is how long a silent worker may go before every worker aborts."""
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}. Received: strategy={name!r}")
    if heartbeat_timeout_s is not None and name != "multiworker":
        raise ValueError(f"heartbeat_timeout_s applies to strategy='multiworker' only. Received: strategy={name!r}")
    if heartbeat_timeout_s is not None and not heartbeat_timeout_s > 0:
        raise ValueError(f"heartbeat_timeout_s must be a positive number of seconds. "
                         f"Received: heartbeat_timeout_s={heartbeat_timeout_s!r}")
    if name == "multiworker":
        if not os.environ.get("TF_CONFIG"):
            raise ValueError("strategy='multiworker' reads the cluster from the TF_CONFIG environment variable, "
                             "which is not set. Received: TF_CONFIG=None")
        configure_coordination(heartbeat_timeout(heartbeat_timeout_s))
        return tf.distribute.MultiWorkerMirroredStrategy()
    if cpu_replicas and cpu_replicas > 1:
        configure_cpu_replicas(cpu_replicas)
    gpus = tf.config.list_logical_devices("GPU")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "auto" and len(gpus) <= 1 and not (cpu_replicas and cpu_replicas > 1):
        return tf.distribute.get_strategy()
    if len(gpus) > 1 or (gpus and not cpu_replicas):
        return tf.distribute.MirroredStrategy()
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    if cpu_replicas and len(cpus) < cpu_replicas:
        raise RuntimeError(f"cpu_replicas={cpu_replicas} but only {len(cpus)} logical CPU devices exist: "
                           "TensorFlow was initialised before they could be configured. Use a fresh process.")
    return tf.distribute.MirroredStrategy(devices=cpus[:max(cpu_replicas, 1)],
                                          cross_device_ops=tf.distribute.ReductionToOneDevice())


def is_chief(strategy):
    """True on the worker that writes outputs (always true outside multi-worker training)."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    resolver = strategy.cluster_resolver
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type is None or task_type == "chief" or (task_type == "worker" and task_id == 0 and
                                                         "chief" not in json.loads(os.environ["TF_CONFIG"])
                                                         .get("cluster", {}))


def strategy_name(strategy):
    """The public name of a strategy (MultiWorkerMirroredStrategy's class is CollectiveAllReduceStrategy)."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "MultiWorkerMirroredStrategy"
    if isinstance(strategy, tf.distribute.MirroredStrategy):
        return "MirroredStrategy"
    return "default"


def describe(strategy):
    """One line: the strategy and its devices."""
    n = strategy.num_replicas_in_sync
    kind = strategy_name(strategy)
    if isinstance(strategy, tf.distribute.MirroredStrategy):
        return f"{kind} over {n} replicas ({', '.join(strategy.extended.worker_devices)})"
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        r = strategy.cluster_resolver
        return f"{kind} with {n} replicas in sync (this process: {r.task_type} {r.task_id})"
    return "Default strategy (one device)"
