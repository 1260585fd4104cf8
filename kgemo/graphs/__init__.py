"""Graph builders: (Conversation, features, knowledge tables) → ``HeteroData``; graph cache; networkx export.

One builder per graph type, each with typed settings and a schema card in ``graphs/<name>.md``. Builders are pure:
they receive features and knowledge and import neither :mod:`kgemo.encoders` nor :mod:`kgemo.knowledge`; the
input pipeline (:mod:`kgemo.pipeline`) brings both.
"""
from .. import _pyg  # noqa: F401  (PyG without the transformers import it does not need: kgemo/_pyg.py)
from .batching import GraphLoader, batches
from .base import BUILDERS, GraphBuilder, builder_class, get_builder, label_tensor, register_builder
from .co_interactive_graph import CoInteractiveGraphBuilder, CoInteractiveGraphSettings
from .concept_features import ComposeFeatures, ConceptFeatures, NodeFeatures
from .concept_graph import ConceptGraphBuilder, ConceptGraphSettings
from .conversation_graph import ConversationGraphBuilder, ConversationGraphSettings, context_edges
from .cross_domain_graph import CrossDomainGraphBuilder, CrossDomainGraphSettings
from .event_graph import EventGraphBuilder, EventGraphSettings
from .graph_cache import GraphCache, load_graphs, save_graphs
from .networkx_export import to_networkx

__all__ = [
    "BUILDERS", "GraphBuilder", "builder_class", "get_builder", "register_builder", "label_tensor",
    "ConversationGraphBuilder", "ConversationGraphSettings", "ConceptGraphBuilder", "ConceptGraphSettings",
    "ConceptFeatures", "context_edges", "GraphCache", "save_graphs", "load_graphs", "to_networkx", "batches",
    "GraphLoader", "CoInteractiveGraphBuilder", "CoInteractiveGraphSettings", "EventGraphBuilder",
    "EventGraphSettings", "NodeFeatures", "ComposeFeatures", "CrossDomainGraphBuilder", "CrossDomainGraphSettings",
]
