"""How much of the CPU a TensorFlow training loop really uses, round by round (not a test; docs/performance.md).

    python benchmarks/cpu_use_probe.py [--model resnet20] [--batch 32] [--steps 30] [--rounds 3] [--inter-op 2]

Each round runs `--steps` steps of model.fit on one in-memory batch and prints images/s, the process's CPU use
(process time over wall time: 200% is two busy cores) and, from /proc/stat (Linux), how idle the whole machine
was. Rounds where images/s fell and one core sat idle were the "one-core mode" of the speed benchmark's
idle-machine runs: the end of the round's fit call waiting for tf.data's autotuner thread, which the package
now turns off (--tf-data-autotune turns it on again to see it; docs/performance.md, open question 1).
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def machine_ticks():
    """The /proc/stat cpu line (user, nice, system, idle, iowait, irq, softirq, steal, ...), or None."""
    try:
        with open("/proc/stat") as f:
            return [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnet20")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--intra-op", type=int, default=os.cpu_count())
    p.add_argument("--inter-op", type=int, default=os.cpu_count())
    p.add_argument("--tf-data-autotune", action="store_true",
                   help="tf.data's autotuner on, as before the package turned it off: each round (one fit call) "
                        "then often ends by waiting for the tuner's thread (docs/performance.md, question 1)")
    args = p.parse_args(argv)

    import keras
    import numpy as np
    import tensorflow as tf

    from keras_cnns import get_model, get_spec
    from keras_cnns.data import pipeline
    from keras_cnns.losses import loss_and_metric

    tf.config.threading.set_intra_op_parallelism_threads(args.intra_op)
    tf.config.threading.set_inter_op_parallelism_threads(args.inter_op)
    spec = get_spec(args.model)
    model = get_model(spec.name)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss=loss_and_metric(spec.output)[0],
                  jit_compile=False)
    shape = tuple(model.input_shape[1:])
    x = np.random.default_rng(0).standard_normal((args.batch,) + shape).astype("float32")
    y = np.zeros(args.batch, "int32")
    pipeline.TF_DATA_AUTOTUNE = args.tf_data_autotune
    data = tf.data.Dataset.from_tensors((x, y)).repeat().with_options(pipeline.tuning_options())
    model.fit(data, steps_per_epoch=4, epochs=1, verbose=0)  # tracing and the first steps
    print(f"{spec.name}, batch {args.batch}, intra-op {args.intra_op}, inter-op {args.inter_op}, "
          f"TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'default')}")
    for i in range(args.rounds):
        before, cpu0, wall0 = machine_ticks(), time.process_time(), time.perf_counter()
        model.fit(data, steps_per_epoch=args.steps, epochs=1, verbose=0)
        wall, cpu, after = time.perf_counter() - wall0, time.process_time() - cpu0, machine_ticks()
        line = f"round {i}: {args.steps * args.batch / wall:.1f} images/s, process CPU {cpu / wall:.0%}"
        if before and after:
            d = [b - a for a, b in zip(before, after)]
            line += f", machine idle {d[3] / sum(d):.0%}, steal {d[7] / sum(d):.0%}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
