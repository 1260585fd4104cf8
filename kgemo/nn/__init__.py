"""Reusable layers (PyG ``MessagePassing`` style): one per file, math in the docstring."""
from .attention_pooling import AttentionPooling
from .context_transformer import ContextAttention, ContextTransformer, ContextTransformerLayer
from .hetero_encoder import HeteroGraphEncoder
from .ket_concept_attention import KETConceptAttention
from .knowledge_gat import KnowledgeGAT
from .relation_gru import RelationGRU

__all__ = ["AttentionPooling", "ContextAttention", "ContextTransformer", "ContextTransformerLayer", "KETConceptAttention", "KnowledgeGAT",
           "HeteroGraphEncoder", "RelationGRU"]
