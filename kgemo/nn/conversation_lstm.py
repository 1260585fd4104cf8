"""An LSTM over the utterances of each conversation of a PyG batch (packed, no Python loop over conversations)."""
from __future__ import annotations

from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torch_geometric.utils import to_dense_batch

__all__ = ["ConversationLSTM"]


class ConversationLSTM(nn.Module):
    r"""(Bi)LSTM along each conversation's utterance sequence, on the flat node tensor of a batch.

    .. math::
        \mathbf{H}^{(c)} = \mathrm{BiLSTM}\big(\mathbf{x}^{(c)}_1, \dots, \mathbf{x}^{(c)}_{N_c}\big)
        \quad\text{for every conversation } c \text{ of the batch}

    The utterance nodes of a PyG batch are stored conversation after conversation, each in utterance order, so
    :func:`~torch_geometric.utils.to_dense_batch` gives the padded ``[B, L, F]`` sequences; they are packed (the
    LSTM never reads padding), run in one cuDNN/MKL call, and scattered back to node order.

    Args:
        in_dim: input width.
        out_dim: output width (each direction has ``out_dim // 2`` units when bidirectional).
        bidirectional: read the conversation both ways (Co-GAT, DCR-Net) or only forward (online use).
        num_layers: stacked LSTM layers.

    Shapes:
        - **input:** x :math:`(N, \text{in\_dim})`, batch :math:`(N)` conversation index of each node, sorted
          (``None`` = one conversation).
        - **output:** :math:`(N, \text{out\_dim})`.
    """

    def __init__(self, in_dim: int, out_dim: int, bidirectional: bool = True, num_layers: int = 1):
        super().__init__()
        if bidirectional and out_dim % 2:
            raise ValueError(f"out_dim={out_dim} must be even for a bidirectional LSTM")
        self.in_dim, self.out_dim, self.bidirectional = in_dim, out_dim, bidirectional
        self.lstm = nn.LSTM(in_dim, out_dim // 2 if bidirectional else out_dim, num_layers=num_layers,
                            batch_first=True, bidirectional=bidirectional)

    def reset_parameters(self):
        self.lstm.reset_parameters()

    def forward(self, x: Tensor, batch: Tensor | None = None) -> Tensor:
        dense, mask = to_dense_batch(x, batch)                                   # [B, L, F], [B, L]
        lengths = mask.sum(1).cpu()
        packed = pack_padded_sequence(dense, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=dense.size(1))  # [B, L, out_dim]
        return out[mask]                                                          # [N, out_dim]

    def __repr__(self) -> str:
        kind = "BiLSTM" if self.bidirectional else "LSTM"
        return f"{type(self).__name__}({self.in_dim}, {self.out_dim}, {kind})"
