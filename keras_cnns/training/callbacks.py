"""Runs that survive a crash: an epoch is either committed whole or not at all.

At the end of every epoch :class:`RunState` writes, in this order,
  1. ``checkpoints/epoch-000K.weights.h5`` (model *and* optimizer state, so the step counter, the
     learning-rate schedule and the momenta resume exactly), written to a temporary name then renamed;
  2. ``checkpoints/best-epoch-000K.weights.h5`` when the monitored value improved (same way);
  3. ``checkpoints/state.json`` (temporary file + rename): the commit point. It names the two files above
     and holds the history rows, the best value and the plateau callback's counters;
  4. ``history.csv``, regenerated from state.json (so a crashed epoch never leaves a row behind), and then
     the files of older epochs are deleted.
A SIGKILL at any moment leaves the previous state.json and the files it names intact; rerunning the same
command resumes after the last committed epoch with one history row per epoch. The best value lives in
state.json, so the best-model checkpoint keeps it across a resume (keras.callbacks.ModelCheckpoint
would start again from +-inf).

:class:`EpochCommitter` is the Keras callback that commits each epoch and stops the run, keeping the last
good checkpoint, when the loss becomes NaN or infinite.
"""

import csv
import glob
import io
import json
import math
import os
import time

import keras
import numpy as np

from keras_cnns.paths import atomic_write_text, replaced_atomically

STATE = "state.json"
HISTORY = "history.csv"


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def atomic_save_weights(model, path):
    """model.save_weights through keras_cnns.paths.replaced_atomically."""
    with replaced_atomically(path) as tmp:
        model.save_weights(tmp)


def write_history_csv(path, rows):
    """Writes the history rows (dicts) as CSV, atomically; columns in first-seen order."""
    columns = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    atomic_write_text(path, text.getvalue())


def read_history_csv(path):
    """history.csv -> list of dicts with float values (epoch as int)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    out = []
    for row in rows:
        out.append({k: (int(v) if k == "epoch" else float(v)) for k, v in row.items() if v != ""})
    return out


class RunState:
    """The checkpoint folder of one run: what was committed, and how to resume from it.

    Args:
      checkpoint_dir: folder for weights and state.json (``<output>/checkpoints``).
      history_path: the CSV history regenerated at each commit.
      config: what identifies the run (model, dataset, ...); a resume with a different config is refused.
      monitor, mode: the value the best checkpoint tracks ("val_accuracy", "max").
    """

    def __init__(self, checkpoint_dir, history_path, config, monitor="val_accuracy", mode="max"):
        self.dir = checkpoint_dir
        self.history_path = history_path
        self.config = dict(config)
        self.monitor = monitor
        self.mode = mode
        self.epochs_done = 0
        self.history = []
        self.best = None          # {"value": v, "epoch": k, "weights": file}
        self.weights = None       # file of the last committed epoch
        self.extra = {}           # counters of stateful callbacks (ReduceLROnPlateau)
        self.loaded_config = {}   # the config state.json was committed with (after load)
        os.makedirs(self.dir, exist_ok=True)

    @property
    def state_path(self):
        return os.path.join(self.dir, STATE)

    def load(self):
        """Reads state.json if there is one; returns the number of committed epochs."""
        if not os.path.isfile(self.state_path):
            return 0
        with open(self.state_path) as f:
            state = json.load(f)
        for key in ("model", "dataset"):
            if state["config"].get(key) != self.config.get(key):
                raise ValueError(
                    f"{self.dir} holds checkpoints of another run ({key}={state['config'].get(key)!r}). "
                    f"Choose another output directory or delete that folder. Received: {key}="
                    f"{self.config.get(key)!r}")
        self.epochs_done = int(state["epochs_done"])
        self.history = state["history"][:self.epochs_done]
        self.best = state.get("best")
        self.weights = state.get("weights")
        self.extra = state.get("extra", {})
        self.loaded_config = dict(state["config"])
        write_history_csv(self.history_path, self.history)
        return self.epochs_done

    def restore(self, model):
        """Loads the last committed weights and optimizer state into a compiled model."""
        if not self.weights:
            return
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(os.path.join(self.dir, self.weights))

    def improved(self, value):
        if value is None or not np.isfinite(value):
            return False
        if self.best is None:
            return True
        return value > self.best["value"] if self.mode == "max" else value < self.best["value"]

    def commit(self, model, epoch, row, extra=None):
        """Commits epoch `epoch` (1-based): weights, maybe the best weights, then state.json, then CSV."""
        weights = f"epoch-{epoch:04d}.weights.h5"
        atomic_save_weights(model, os.path.join(self.dir, weights))
        value = row.get(self.monitor)
        if self.improved(value):
            best_file = f"best-epoch-{epoch:04d}.weights.h5"
            atomic_save_weights(model, os.path.join(self.dir, best_file))
            self.best = {"monitor": self.monitor, "value": float(value), "epoch": epoch, "weights": best_file}
        self.history = self.history[:epoch - 1] + [row]
        self.epochs_done = epoch
        self.weights = weights
        if extra is not None:
            self.extra = extra
        state = {"config": self.config, "epochs_done": epoch, "weights": weights, "best": self.best,
                 "history": self.history, "extra": self.extra}
        atomic_write_text(self.state_path, json.dumps(state, indent=1, default=float))
        write_history_csv(self.history_path, self.history)
        keep = {weights, self.best["weights"] if self.best else None}
        for path in glob.glob(os.path.join(self.dir, "*epoch-*.weights.h5")):
            if os.path.basename(path) not in keep:
                os.remove(path)

    def best_weights_path(self):
        return os.path.join(self.dir, self.best["weights"]) if self.best else None


def _finite(value):
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return True


class EpochCommitter(keras.callbacks.Callback):
    """Commits every finished epoch to a :class:`RunState`; stops on a NaN/inf loss without committing.

    `plateau` is the run's ReduceLROnPlateau (or None): its counters are saved with each epoch and
    restored on resume.
    """

    def __init__(self, state, plateau=None, on_commit=None):
        super().__init__()
        self.state = state
        self.plateau = plateau
        self.on_commit = on_commit
        self.diverged = None
        self._start = None

    def on_train_begin(self, logs=None):
        saved = self.state.extra.get("plateau")
        if self.plateau is not None and saved:
            self.plateau.best = saved["best"]
            self.plateau.wait = saved["wait"]
            self.plateau.cooldown_counter = saved["cooldown_counter"]

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.time()

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not _finite(loss) and self.diverged is None:
            self.diverged = {"epoch": self.state.epochs_done + 1, "batch": batch + 1, "loss": float(loss)}
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        if self.diverged is None and not all(_finite(v) for v in logs.values()):
            self.diverged = {"epoch": epoch + 1, "batch": None, "loss": logs.get("loss")}
            self.model.stop_training = True
        if self.diverged is not None:
            return
        row = {"epoch": epoch + 1}
        row.update({k: float(v) for k, v in sorted(logs.items()) if k != "learning_rate"})
        row["lr"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        row["seconds"] = round(time.time() - (self._start or time.time()), 3)
        extra = None
        if self.plateau is not None:
            extra = {"plateau": {"best": float(self.plateau.best), "wait": int(self.plateau.wait),
                                 "cooldown_counter": int(self.plateau.cooldown_counter)}}
        self.state.commit(self.model, epoch + 1, row, extra)
        if self.on_commit is not None:
            self.on_commit(epoch + 1, row)

    def divergence_message(self):
        d = self.diverged
        where = f"epoch {d['epoch']}" + (f", batch {d['batch']}" if d["batch"] else "")
        kept = (f"the last good checkpoint (epoch {self.state.epochs_done}) is kept in {self.state.dir}"
                if self.state.epochs_done else "no epoch had finished, so there is no checkpoint")
        return (f"Training stopped: the loss became {d['loss']} at {where}; {kept}. Lower the learning rate "
                "or the batch size (or try --recipe fast) and rerun: it resumes from that checkpoint.")
