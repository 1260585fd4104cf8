"""Reusable layers (PyG ``MessagePassing`` style): one per file, math in the docstring."""
from .. import _pyg  # noqa: F401  (PyG without the transformers import it does not need: kgemo/_pyg.py)
from .attention_pooling import AttentionPooling
from .co_attention import CoAttention
from .co_interactive_gat import CoInteractiveGAT
from .commonsense_gru import CommonsenseGRU
from .context_transformer import ContextAttention, ContextTransformer, ContextTransformerLayer
from .conversation_lstm import ConversationLSTM
from .hashed_word_bag import HashedWordBag
from .hetero_encoder import HeteroGraphEncoder
from .ket_concept_attention import KETConceptAttention
from .knowledge_gat import KnowledgeGAT
from .knowledge_selector import KnowledgeSelector
from .relation_gru import RelationGRU
from .residual_gat import ResidualGAT
from .topic_layer import TopicLayer

__all__ = ["AttentionPooling", "ContextAttention", "ContextTransformer", "ContextTransformerLayer", "KETConceptAttention", "KnowledgeGAT",
           "HeteroGraphEncoder", "RelationGRU", "CoAttention", "CoInteractiveGAT", "ConversationLSTM", "HashedWordBag",
           "ResidualGAT", "CommonsenseGRU", "KnowledgeSelector", "TopicLayer"]
