"""The one trainer: configs, data preparation, the LightningModule, fit / evaluate."""
from .. import _pyg  # noqa: F401  (PyG without the transformers import it does not need: kgemo/_pyg.py)
from .config import DataConfig, ExperimentConfig, TrainConfig, apply_overrides, load_config
from .data import PreparedData, build_pipeline, prepare_data, task_setup
from .module import TaskModule
from .trainer import build_model, class_rows, evaluate, fit, init_weights, score_graphs

__all__ = [
    "DataConfig", "ExperimentConfig", "TrainConfig", "apply_overrides", "load_config", "PreparedData",
    "build_pipeline", "prepare_data", "task_setup", "TaskModule", "build_model", "evaluate", "fit",
    "score_graphs", "init_weights", "class_rows",
]
