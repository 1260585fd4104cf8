"""Models, one file each; every model declares its graph builder, knowledge needs and tasks."""
from .. import _pyg  # noqa: F401  (PyG without the transformers import it does not need: kgemo/_pyg.py)
from .base import (MODELS, KGModel, ModelConfig, UtteranceStateModel, get_model_class, load_model, register_model,
                   save_model)
from .affect_prior import AffectPrior, AffectPriorConfig
from .ckenet import CKENet, CKENetConfig
from .cluster_graph import ClusterGraph, ClusterGraphConfig
from .cogat import CoGAT, CoGATConfig
from .cosmic import COSMIC, CosmicConfig
from .dann import DANN, DANNConfig
from .dcrnet import DCRNet, DCRNetConfig
from .joint_input import JointConfig, UtteranceInput, joint_tasks
from .ket import KET, KETConfig
from .no_knowledge import NoKnowledge, NoKnowledgeConfig
from .todkat import TODKAT, TodkatConfig

__all__ = [
    "MODELS", "KGModel", "ModelConfig", "get_model_class", "load_model", "register_model", "save_model",
    "NoKnowledge", "NoKnowledgeConfig", "KET", "KETConfig", "CKENet", "CKENetConfig", "CoGAT", "CoGATConfig",
    "DCRNet", "DCRNetConfig", "UtteranceStateModel", "JointConfig", "UtteranceInput", "joint_tasks",
    "COSMIC", "CosmicConfig", "TODKAT", "TodkatConfig",
    "DANN", "DANNConfig", "ClusterGraph", "ClusterGraphConfig", "AffectPrior", "AffectPriorConfig",
]
