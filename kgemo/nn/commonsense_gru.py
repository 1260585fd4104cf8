"""COSMIC's per-turn recurrence: context, internal, external, intent and emotion states fed by ATOMIC relations."""
from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor, nn

from ..atomic_relations import COSMIC_RELATIONS

__all__ = ["CommonsenseGRU"]

#: The context attentions, named as the official code's ``--attention`` values (its ``SimpleAttention`` and
#: ``MatchingAttention`` types without a mask, which the cell never passes).
ATTENTIONS = ("general", "general2", "simple")


class CommonsenseGRU(nn.Module):
    r"""COSMIC's cell (Ghosal et al., Findings of EMNLP 2020) unrolled over the turns of a batch of conversations.

    At turn :math:`t` with utterance :math:`\mathbf{u}_t`, speaker :math:`s`, listeners :math:`l \ne s` (every
    other party of the conversation) and the utterance's relation features
    :math:`\mathbf{x}^{I}, \mathbf{x}^{E}, \mathbf{x}^{R}` (xIntent, xEffect, xReact: about the speaker) and
    :math:`\mathbf{o}^{E}, \mathbf{o}^{R}` (oEffect, oReact: about the others):

    .. math::
        \mathbf{g}_t &= \mathrm{GRU}_g([\mathbf{u}_t; \mathbf{q}_s; \mathbf{r}_s], \mathbf{g}_{t-1})
            && \text{context state} \\
        \mathbf{c}_t &= \textstyle\sum_{j<t} \beta_j \mathbf{g}_j, \quad
            \beta = \mathrm{softmax}_{j<t}(a_j)
            && \text{attention over the context so far } (\mathbf{c}_0 = 0) \\
        \mathbf{r}_s &\leftarrow \mathrm{GRU}_r([\mathbf{u}_t; \mathbf{x}^{R}; \mathbf{c}_t], \mathbf{r}_s)
            && \text{speaker's external state} \\
        \mathbf{q}_s &\leftarrow \mathrm{GRU}_q([\mathbf{x}^{E}; \mathbf{c}_t], \mathbf{q}_s)
            && \text{speaker's internal state} \\
        \mathbf{r}_l &\leftarrow \mathrm{GRU}_{r'}([\mathbf{u}_t; \mathbf{o}^{R}; \mathbf{r}_s], \mathbf{r}_l), \quad
        \mathbf{q}_l \leftarrow \mathrm{GRU}_{q'}([\mathbf{o}^{E}; \mathbf{q}_s], \mathbf{q}_l)
            && \text{each listener } l \text{ (``listener\_state``)} \\
        \mathbf{i}_s &\leftarrow \mathrm{GRU}_i([\mathbf{x}^{I}; \mathbf{q}_s], \mathbf{i}_s)
            && \text{speaker's intent} \\
        \mathbf{e}_t &= \mathrm{GRU}_e([\mathbf{u}_t; \mathbf{q}_s; \mathbf{r}_s; \mathbf{i}_s], \mathbf{e}_{t-1})
            && \text{emotion state: the output}

    with the score :math:`a_j` of an earlier context state set by ``attention`` (the official code's
    ``--attention`` values):

    .. math::
        \text{general: } a_j = \mathbf{g}_j^\top \mathbf{W}_a \mathbf{u}_t, \qquad
        \text{general2: } a_j = \tanh\big(\mathbf{g}_j^\top (\mathbf{W}_a \mathbf{u}_t + \mathbf{b}_a)\big), \qquad
        \text{simple: } a_j = \mathbf{w}_a^\top \mathbf{g}_j

    ("simple" does not look at the utterance: a learned salience of each context state). The speaker's states on
    the right of the last three lines are the updated ones. Listeners keep their intent
    state; without ``listener_state`` they keep all their states, as the official code's default. Dropout acts on
    every newly computed state (the official cell drops out all carried states after every turn, so a state that
    is not updated is dropped again at each turn; here it is kept as it was). Party states start at zero.

    Conversations are processed longest first, so at turn :math:`t` the cells run on the conversations that still
    have a turn :math:`t` only (as packed sequences), and listener updates on the rows of existing listeners only;
    the outputs of padded turns are zero.

    One direction: COSMIC's bidirectional model runs a second instance on the reversed turns
    (:class:`~kgemo.models.COSMIC` does).

    Args:
        input_size: width of :math:`\mathbf{u}_t`.
        knowledge_size: width of each relation feature.
        state_size: width of the context, internal, external and intent states (COSMIC's repo: 150).
        emotion_size: width of the emotion state.
        listener_state: update the listeners' internal and external states from oEffect / oReact.
        dropout: dropout on the carried states.
        attention: the context attention's score, ``"general"`` (query-dependent, the default),
            ``"general2"`` or ``"simple"`` (see above; the official code's default is ``"simple"``).

    Shapes:
        - **input:** u :math:`(B, T, H)`; knowledge {relation: :math:`(B, T, K)`} for COSMIC's five relations;
          speaker :math:`(B, T)` party index of each turn; mask :math:`(B, T)` real turns; parties :math:`(B)`
          number of parties per conversation.
        - **output:** :math:`(B, T, \text{emotion\_size})` (zero at padded turns); with ``return_states`` also
          {``"internal"``, ``"external"``, ``"intent"``: :math:`(B, T, P, \text{state\_size})`, every party's state
          after each turn}.
    """

    relations = COSMIC_RELATIONS

    def __init__(self, input_size: int, knowledge_size: int, state_size: int = 150, emotion_size: int = 150,
                 listener_state: bool = True, dropout: float = 0.0, attention: str = "general"):
        super().__init__()
        if attention not in ATTENTIONS:
            raise ValueError(f"{type(self).__name__}: attention must be one of {ATTENTIONS}, got {attention!r}")
        h, k, d, e = input_size, knowledge_size, state_size, emotion_size
        self.input_size, self.knowledge_size, self.state_size, self.emotion_size = h, k, d, e
        self.listener_state, self.attention = listener_state, attention
        self.context_cell = nn.GRUCell(h + 2 * d, d)
        # Built in the same place whatever the kind, so "general" draws the same initial weights as before the
        # option existed (bit-identical runs of the existing configs).
        self.context_attention = (nn.Linear(d, 1, bias=False) if attention == "simple"
                                  else nn.Linear(h, d, bias=attention == "general2"))
        self.external_cell = nn.GRUCell(h + k + d, d)
        self.internal_cell = nn.GRUCell(k + d, d)
        self.intent_cell = nn.GRUCell(k + d, d)
        self.emotion_cell = nn.GRUCell(h + 3 * d, e)
        if listener_state:
            self.listener_external_cell = nn.GRUCell(h + k + d, d)
            self.listener_internal_cell = nn.GRUCell(k + d, d)
        self.dropout = nn.Dropout(dropout)
        self.reset_parameters()

    def reset_parameters(self):
        for m in self.modules():
            if isinstance(m, (nn.GRUCell, nn.Linear)):
                m.reset_parameters()

    def forward(self, u: Tensor, knowledge: Mapping[str, Tensor], speaker: Tensor, mask: Tensor, parties: Tensor,
                return_states: bool = False):
        b, t_max, _ = u.shape
        p = int(parties.max()) if parties.numel() else 1
        missing = [r for r in self.relations if r not in knowledge]
        if missing:
            raise ValueError(f"{type(self).__name__} needs features for {missing}")
        # Longest conversation first, so the real turns at position t are the first n_t rows (as packed sequences):
        # no work is spent on padding. Outputs are put back in the input order at the end.
        lengths = mask.sum(1)
        order = torch.argsort(lengths, descending=True, stable=True)
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(b, device=u.device)
        u, speaker, parties = u[order], speaker[order], parties[order]
        x_int, x_eff, x_rea, o_eff, o_rea = (knowledge[r][order] for r in
                                             ("xIntent", "xEffect", "xReact", "oEffect", "oReact"))
        active = (lengths[order].unsqueeze(1) > torch.arange(t_max, device=u.device)).sum(0).tolist()   # [T]
        party_ids = torch.arange(p, device=u.device)
        party_exists = party_ids.unsqueeze(0) < parties.unsqueeze(1)                                    # [B, P]

        d = self.state_size
        q = u.new_zeros(b, p, d)          # internal states
        r = u.new_zeros(b, p, d)          # external states
        i = u.new_zeros(b, p, d)          # intent states
        g = u.new_zeros(b, d)             # context state
        e = u.new_zeros(b, self.emotion_size)
        keys: list[Tensor] = []           # context states after each turn, [B, D] each
        out, trace = [], {"internal": [], "external": [], "intent": []}
        for t in range(t_max):
            n = active[t]                                                       # conversations still talking
            rows = torch.arange(n, device=u.device)
            u_t, s = u[:n, t], speaker[:n, t]                                   # [n, H], [n]
            q_s, r_s, i_s = q[rows, s], r[rows, s], i[rows, s]                  # [n, D]

            # Context state and attention over the earlier context states of the conversation.
            g_t = self.context_cell(torch.cat([u_t, q_s, r_s], -1), g[:n])      # [n, D]
            if keys:
                c_t = self.attend(torch.stack(keys, 1)[:n], u_t)                # [n, D]
            else:
                c_t = u.new_zeros(n, d)

            # The speaker: external state from xReact, internal from xEffect, intent from xIntent.
            r_s = self.dropout(self.external_cell(torch.cat([u_t, x_rea[:n, t], c_t], -1), r_s))
            q_s = self.dropout(self.internal_cell(torch.cat([x_eff[:n, t], c_t], -1), q_s))
            i_s = self.dropout(self.intent_cell(torch.cat([x_int[:n, t], q_s], -1), i_s))
            e_t = self.dropout(self.emotion_cell(torch.cat([u_t, q_s, r_s, i_s], -1), e[:n]))

            # The listeners — every other party of the conversation — from oReact / oEffect and the speaker's new
            # states; computed on their rows only (most conversations have far fewer parties than the batch).
            if self.listener_state:
                lb, lp = ((party_ids.unsqueeze(0) != s.unsqueeze(1)) & party_exists[:n]).nonzero(as_tuple=True)
                if lb.numel():
                    r_l = self.listener_external_cell(torch.cat([u_t[lb], o_rea[lb, t], r_s[lb]], -1), r[lb, lp])
                    q_l = self.listener_internal_cell(torch.cat([o_eff[lb, t], q_s[lb]], -1), q[lb, lp])
                    r = r.index_put((lb, lp), self.dropout(r_l))
                    q = q.index_put((lb, lp), self.dropout(q_l))
            # The speaker's rows; conversations that have ended keep every state.
            r = r.index_put((rows, s), r_s)
            q = q.index_put((rows, s), q_s)
            i = i.index_put((rows, s), i_s)
            g = torch.cat([self.dropout(g_t), g[n:]])
            e = torch.cat([e_t, e[n:]])
            keys.append(g)
            out.append(torch.cat([e_t, e_t.new_zeros(b - n, self.emotion_size)]))
            if return_states:
                trace["internal"].append(q)
                trace["external"].append(r)
                trace["intent"].append(i)
        emotions = (torch.stack(out, 1) if out else u.new_zeros(b, 0, self.emotion_size))[inverse]   # [B, T, E]
        if return_states:
            return emotions, {k: torch.stack(v, 1)[inverse] for k, v in trace.items()}
        return emotions

    def attend(self, past: Tensor, u_t: Tensor) -> Tensor:
        r"""The context attention: ``past`` :math:`(n, t, D)` earlier context states, ``u_t`` :math:`(n, H)` the
        utterances (unused by ``"simple"``) → :math:`\mathbf{c}_t` :math:`(n, D)`."""
        if self.attention == "simple":
            score = self.context_attention(past).squeeze(-1)                   # [n, t]
        else:
            score = (past @ self.context_attention(u_t).unsqueeze(-1)).squeeze(-1)  # [n, t]
            if self.attention == "general2":
                score = torch.tanh(score)
        beta = torch.softmax(score, -1)                                        # [n, t]
        return (beta.unsqueeze(-1) * past).sum(1)                              # [n, D]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.input_size}, knowledge={self.knowledge_size}, "
                f"state={self.state_size}, emotion={self.emotion_size}, listener_state={self.listener_state}, "
                f"attention={self.attention!r})")
