"""Training: the papers' recipes as data, fit() (model.fit with distribution, crash-safe checkpoints,
TensorBoard, CSV history and curves), and evaluation of saved models."""

from keras_cnns.training.callbacks import RunState, TrainingDiverged, read_history_csv  # noqa: F401
from keras_cnns.training.evaluate import evaluate_dir, evaluate_model, summarize  # noqa: F401
from keras_cnns.training.fit import PRECISIONS, FitResult, default_output_dir, fit, inference_model  # noqa: F401
from keras_cnns.training.plots import plot_confusion_matrix, plot_history  # noqa: F401
from keras_cnns.training.recipes import RECIPES, Recipe, get_recipe  # noqa: F401
from keras_cnns.training.strategy import STRATEGIES, configure_cpu_replicas, make_strategy  # noqa: F401
