"""Graph builders: (Conversation, features, knowledge) → ``HeteroData``; graph cache; networkx export.

One builder per graph type, each with a schema card in ``graphs/<name>.md``.
"""
from .batching import GraphLoader, batches
from .base import BUILDERS, GraphBuilder, get_builder, label_tensor, register_builder
from .co_interactive_graph import CoInteractiveGraphBuilder
from .concept_features import ComposeFeatures, ConceptFeatures, NodeFeatures
from .concept_graph import ConceptGraphBuilder
from .conversation_graph import ConversationGraphBuilder, context_edges
from .event_graph import COSMIC_RELATIONS, EventGraphBuilder
from .graph_cache import GraphCache, load_graphs, save_graphs
from .networkx_export import to_networkx
from .pipeline import InputPipeline, load_knowledge

__all__ = [
    "BUILDERS", "GraphBuilder", "get_builder", "register_builder", "label_tensor", "ConversationGraphBuilder",
    "ConceptGraphBuilder", "ConceptFeatures", "context_edges", "GraphCache", "save_graphs", "load_graphs",
    "to_networkx", "InputPipeline", "load_knowledge", "batches", "GraphLoader", "CoInteractiveGraphBuilder",
    "EventGraphBuilder", "COSMIC_RELATIONS", "NodeFeatures", "ComposeFeatures",
]
