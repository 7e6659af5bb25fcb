"""A custom training loop with strategy.run, for MultiWorkerMirroredStrategy.

Keras 3's model.fit has open bug reports under MultiWorkerMirroredStrategy ("Invalid reduction
dimension" and friends, keras-team/keras issues on multi-worker fit), so fit() uses this loop there: the
compiled model's loss and optimizer, the per-example losses averaged over the *global* batch
(tf.nn.compute_average_loss), gradients all-reduced by the optimizer's apply_gradients across workers, and
the same epoch commits (:class:`keras_cnns.training.callbacks.RunState`) as the model.fit path, so a
crashed multi-worker run resumes the same way. ReduceLROnPlateau is not applied here.
"""

import time

import keras
import numpy as np
import tensorflow as tf

from keras_cnns.outputs import main_output


def _per_example_loss(loss, loss_weights, y, out):
    if isinstance(loss, dict):
        total = 0.0
        for name, fn in loss.items():
            total += (loss_weights or {}).get(name, 1.0) * tf.cast(fn.call(y, out[name]), tf.float32)
        return total
    return tf.cast(loss.call(y, out), tf.float32)


def custom_fit(net, dist, train, val, *, loss, loss_weights, epochs, initial_epoch, state, global_batch,
               output="probabilities", log=print, verbose=1):
    """Trains `net` (compiled inside dist.scope()) from `initial_epoch` to `epochs` with `loss` (a Keras
    Loss, or one per output name with `loss_weights`); returns None, or a message when the loss became
    NaN/inf (nothing is committed for that epoch)."""
    optimizer = net.optimizer
    pick = tf.argmin if output == "rbf_distances" else tf.argmax
    if val is not None:
        val = val.unbatch().batch(global_batch, drop_remainder=True)
    train_dist = dist.experimental_distribute_dataset(train)
    val_dist = dist.experimental_distribute_dataset(val) if val is not None else None

    def counts(y, out, per_example):
        y = tf.reshape(tf.cast(y, tf.int64), [-1])
        correct = tf.reduce_sum(tf.cast(tf.equal(pick(main_output(out), axis=-1), y), tf.float32))
        return tf.reduce_sum(per_example), correct, tf.cast(tf.size(y), tf.float32)

    def train_replica(x, y):
        with tf.GradientTape() as tape:
            out = net(x, training=True)
            per_example = _per_example_loss(loss, loss_weights, y, out)
            objective = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
            if net.losses:
                objective += tf.nn.scale_regularization_loss(tf.add_n(net.losses))
        grads = tape.gradient(objective, net.trainable_variables)
        optimizer.apply_gradients(zip(grads, net.trainable_variables))
        return counts(y, out, per_example)

    def eval_replica(x, y):
        out = net(x, training=False)
        return counts(y, out, _per_example_loss(loss, loss_weights, y, out))

    @tf.function
    def train_step(x, y):
        sums = dist.run(train_replica, args=(x, y))
        return [dist.reduce(tf.distribute.ReduceOp.SUM, s, axis=None) for s in sums]

    @tf.function
    def eval_step(x, y):
        sums = dist.run(eval_replica, args=(x, y))
        return [dist.reduce(tf.distribute.ReduceOp.SUM, s, axis=None) for s in sums]

    for epoch in range(initial_epoch, epochs):
        start = time.time()
        total = np.zeros(3)
        bar = keras.utils.Progbar(None, verbose=verbose) if verbose else None
        log(f"Epoch {epoch + 1}/{epochs} (custom strategy.run loop)")
        for step, (x, y) in enumerate(train_dist):
            total += [float(v) for v in train_step(x, y)]
            if not np.isfinite(total[0]):
                return (f"Training stopped: the loss became {total[0]} at epoch {epoch + 1}, batch {step + 1}; "
                        f"the last good checkpoint (epoch {state.epochs_done}) is kept in {state.dir}.")
            if bar is not None:
                bar.update(step + 1, [("loss", total[0] / total[2]), ("accuracy", total[1] / total[2])])
        row = {"epoch": epoch + 1, "loss": total[0] / total[2], "accuracy": total[1] / total[2]}
        if val_dist is not None:
            vtotal = np.zeros(3)
            for x, y in val_dist:
                vtotal += [float(v) for v in eval_step(x, y)]
            row.update(val_loss=vtotal[0] / max(vtotal[2], 1), val_accuracy=vtotal[1] / max(vtotal[2], 1))
        row["lr"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        row["seconds"] = round(time.time() - start, 3)
        log(" - ".join(f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}" for k, v in row.items()))
        state.commit(net, epoch + 1, row)
    return None
