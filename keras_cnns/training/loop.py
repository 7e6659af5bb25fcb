"""A custom training loop with strategy.run, for MultiWorkerMirroredStrategy.

Keras 3's model.fit has open bug reports under MultiWorkerMirroredStrategy ("Invalid reduction
dimension" and friends, keras-team/keras issues on multi-worker fit), so fit() uses this loop there: the
compiled model's loss (or, for a model compiled without one, its own losses: a detector's ``losses_on``, the
method its train_step uses) and optimizer, the per-example losses (a segmentation model's: per image, the mean
over its pixels) averaged over the *global* batch (tf.nn.compute_average_loss), gradients all-reduced by the
optimizer's apply_gradients across workers, and the same epoch commits
(:class:`keras_cnns.training.callbacks.RunState`) as the model.fit path, so a crashed multi-worker run resumes
the same way. ReduceLROnPlateau is not applied here.
"""

import time

import keras
import numpy as np
import tensorflow as tf

from keras_cnns.outputs import main_output
from keras_cnns.tasks import segmentation as seg
from keras_cnns.tasks.segmentation import MEAN_IOU, PIXEL_ACCURACY

CONFUSION_MATRIX = "confusion_matrix"  # a segmentation term summed over the epoch, logged as its mean IoU


def _per_example_loss(loss, loss_weights, y, out):
    if isinstance(loss, dict):
        total = 0.0
        for name, fn in loss.items():
            total += (loss_weights or {}).get(name, 1.0) * tf.cast(fn.call(y, out[name]), tf.float32)
        return total
    return tf.cast(loss.call(y, out), tf.float32)


def _compiled_loss_terms(loss, loss_weights, output):
    """The terms of a model compiled with `loss` (a classifier): (per-example loss, {"loss", "accuracy"} per
    example)."""
    pick = tf.argmin if output == "rbf_distances" else tf.argmax

    def terms(net, x, y, training):
        out = net(x, training=training)
        per_example = _per_example_loss(loss, loss_weights, y, out)
        labels = tf.reshape(tf.cast(main_output(y), tf.int64), [-1])
        correct = tf.cast(tf.equal(pick(main_output(out), axis=-1), labels), tf.float32)
        return per_example, {"loss": per_example, "accuracy": correct}

    return terms


def _segmentation_terms(loss, num_classes):
    """The terms of a segmentation model (an FCN) compiled with the per-pixel `loss`: (per-image loss = the mean
    over the image's pixels, {"loss", "pixel_accuracy" per image, "confusion_matrix": this batch's K x K pixel
    counts as one (1, K, K) row}). Averaged over the global batch, the per-image losses give model.fit's mean
    per-pixel loss (the images of a run share one size); the epoch's summed matrix gives mean IoU
    (:func:`_epoch_logs`)."""

    def terms(net, x, y, training):
        out = main_output(net(x, training=training))
        labels = tf.cast(main_output(y), tf.int64)
        per_pixel = _per_example_loss(loss, None, labels, out)
        images = tf.shape(per_pixel)[0]
        per_image = tf.reduce_mean(tf.reshape(per_pixel, [images, -1]), axis=1)
        predicted = tf.argmax(out, axis=-1)
        correct = tf.cast(tf.equal(predicted, labels), tf.float32)
        matrix = tf.math.confusion_matrix(tf.reshape(labels, [-1]), tf.reshape(predicted, [-1]),
                                          num_classes=num_classes, dtype=tf.float64)
        return per_image, {"loss": per_image, PIXEL_ACCURACY: tf.reduce_mean(tf.reshape(correct, [images, -1]), 1),
                           CONFUSION_MATRIX: matrix[None]}

    return terms


def _epoch_logs(total):
    """The epoch's logs from its summed terms: every per-example term / the examples, and a confusion matrix's
    mean IoU (keras_cnns.tasks.segmentation.summarize: a class absent from both labels and predictions is left out
    of the mean, as keras.metrics.MeanIoU does)."""
    n = max(float(total.get("examples", 0.0)), 1.0)
    logs = {}
    for name, value in total.items():
        if name == CONFUSION_MATRIX:
            logs[MEAN_IOU] = seg.summarize(value, [str(c) for c in range(len(value))])[MEAN_IOU]
        elif name != "examples":
            logs[name] = float(value) / n
    return logs


def _own_loss_terms(net, x, y, training):
    """The terms of a model that computes its own losses (a detector, keras_cnns.models.faster_rcnn):
    ``net.losses_on(x, y, training)`` gives {name: the mean over this replica's images}; the loss is their sum, as
    in the model's own train_step. Each image of the replica carries its batch's values, so that the global-batch
    average below weighs every replica by its images (replicas of equal batches: each one's loss / replicas, what
    the model's train_step does under model.fit)."""
    losses = net.losses_on(x, y, training=training)
    ones = tf.ones([tf.shape(x)[0]], tf.float32)
    total = tf.add_n([tf.cast(v, tf.float32) for v in losses.values()]) * ones
    return total, {"loss": total, **{name: tf.cast(v, tf.float32) * ones for name, v in losses.items()}}


def custom_fit(net, dist, train, val, *, loss, loss_weights, epochs, initial_epoch, state, global_batch,
               output="probabilities", task="classification", num_classes=None, log=print, verbose=1):
    """Trains `net` (compiled inside dist.scope()) from `initial_epoch` to `epochs` with `loss` (a Keras
    Loss, or one per output name with `loss_weights`), or, when `loss` is None, with the model's own losses
    (``net.losses_on(x, y, training)``, as a detector's train_step); returns None, or a message when the loss
    became NaN/inf (nothing is committed for that epoch). A segmentation model (`task` "segmentation", with
    `num_classes`) is scored per pixel (:func:`_segmentation_terms`).

    History rows, as model.fit's: the mean over the epoch's examples of every term (a classifier's loss and
    accuracy; a detector's loss and its four parts; a segmentation model's loss, pixel accuracy and the mean IoU
    of the epoch's confusion matrix summed over replicas) and their ``val_`` twins in sorted order, lr and
    seconds."""
    optimizer = net.optimizer
    if loss is not None and task == "segmentation":
        terms = _segmentation_terms(loss, num_classes)
    elif loss is not None:
        terms = _compiled_loss_terms(loss, loss_weights, output)
    elif callable(getattr(net, "losses_on", None)):
        terms = _own_loss_terms
    else:
        raise ValueError(f"custom_fit needs a loss, or a model that computes its own (losses_on(x, y, training)). "
                         f"Received: loss=None for {type(net).__name__} {net.name!r}")
    if val is not None:
        val = val.unbatch().batch(global_batch, drop_remainder=True)
    train_dist = dist.experimental_distribute_dataset(train)
    val_dist = dist.experimental_distribute_dataset(val) if val is not None else None

    def sums(values, per_example):
        out = {name: tf.reduce_sum(v, axis=0) for name, v in values.items()}  # over the batch
        out["examples"] = tf.cast(tf.size(per_example), tf.float32)
        return out

    def train_replica(x, y):
        with tf.GradientTape() as tape:
            per_example, values = terms(net, x, y, True)
            objective = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
            if net.losses:
                objective += tf.nn.scale_regularization_loss(tf.add_n(net.losses))
            objective = optimizer.scale_loss(objective)  # mixed_float16: apply_gradients unscales
        grads = tape.gradient(objective, net.trainable_variables)
        optimizer.apply_gradients(zip(grads, net.trainable_variables))
        return sums(values, per_example)

    def eval_replica(x, y):
        per_example, values = terms(net, x, y, False)
        return sums(values, per_example)

    def reduced(results):
        return {k: dist.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in results.items()}

    @tf.function
    def train_step(x, y):
        return reduced(dist.run(train_replica, args=(x, y)))

    @tf.function
    def eval_step(x, y):
        return reduced(dist.run(eval_replica, args=(x, y)))

    def add(total, step):
        for name, value in step.items():
            total[name] = total.get(name, 0.0) + np.asarray(value, np.float64)
        return total

    for epoch in range(initial_epoch, epochs):
        start = time.time()
        total = {}
        bar = keras.utils.Progbar(None, verbose=verbose) if verbose else None
        log(f"Epoch {epoch + 1}/{epochs} (custom strategy.run loop)")
        for step, (x, y) in enumerate(train_dist):
            add(total, train_step(x, y))
            if not np.isfinite(total["loss"]):
                return (f"Training stopped: the loss became {total['loss']} at epoch {epoch + 1}, batch {step + 1}; "
                        f"the last good checkpoint (epoch {state.epochs_done}) is kept in {state.dir}.")
            if bar is not None:
                bar.update(step + 1, list(_epoch_logs(total).items()))
        logs = _epoch_logs(total)
        if val_dist is not None:
            vtotal = {}
            for x, y in val_dist:
                add(vtotal, eval_step(x, y))
            logs.update({f"val_{name}": value for name, value in _epoch_logs(vtotal).items()})
        row = {"epoch": epoch + 1, **dict(sorted(logs.items()))}  # the columns of model.fit's rows (EpochCommitter)
        row["lr"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        row["seconds"] = round(time.time() - start, 3)
        log(" - ".join(f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}" for k, v in row.items()))
        state.commit(net, epoch + 1, row)
    return None
