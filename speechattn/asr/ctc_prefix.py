"""CTC prefix scores for joint attention/CTC beam search (Watanabe et al., 2017), vectorized.

Shapes: N hypotheses (utterances x beams), T encoder frames, V vocabulary size.

For a prefix ``g`` the scorer keeps, for every frame ``t``, the log-probabilities ``r_n[t]`` /
``r_b[t]`` that the first ``t + 1`` frames emit exactly ``g`` ending in a non-blank / blank frame.
Extending ``g`` by a character ``c`` gives the prefix score

    psi(g + c) = log sum_t phi[t - 1] * p_t(c),  phi[t] = r_b[t] + r_n[t]  (r_b[t] if c == last(g))

and ``psi(g + EOS) = log(r_n[T-1] + r_b[T-1])``: the CTC probability of exactly ``g``. The beam adds
``psi(g + c) - psi(g)`` to a hypothesis' score.

Instead of a Python loop over frames, both recursions are linear in probability space and are
solved in closed form with cumulative sums: with ``C[t] = sum_{s<=t} log p_s(c)``,
``r_n(g + c)[t] = C[t] + logcumsumexp_{tau<t}(phi[tau] - C[tau])`` (and likewise for ``r_b``
with the blank's cumulative sum). Differences of cumulative sums lose precision in float32 on
long inputs, so the scorer works in float64.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["CTCPrefixState", "CTCPrefixScorer"]

_NEG_INF = float("-inf")


class CTCPrefixState(NamedTuple):
    """Per-hypothesis prefix state.

    r: (N, T, 2) log-probs of the prefix after each frame, ending in non-blank (0) / blank (1).
    psi: (N,) log prefix score of the prefix; last: (N,) its last character (-1: empty).
    """

    r: Tensor
    psi: Tensor
    last: Tensor

    def select(self, index: Tensor) -> CTCPrefixState:
        return CTCPrefixState(self.r[index], self.psi[index], self.last[index])


class CTCPrefixScorer:
    """Prefix scores of every character extension for N hypotheses at once.

    Args:
        log_probs: (N, T, V) CTC log-probabilities (rows repeated per beam).
        lengths: (N,) valid frames per row (>= 1).
        blank: the blank id; eos: the end-of-sentence id (scored as "the prefix is complete").
    """

    def __init__(self, log_probs: Tensor, lengths: Tensor, blank: int, eos: int) -> None:
        self.x = log_probs.double()  # (N, T, V)
        self.lengths = lengths.to(log_probs.device, torch.long)
        self.blank, self.eos = blank, eos
        frames = torch.arange(self.x.shape[1], device=self.x.device)
        self.valid = frames.unsqueeze(0) < self.lengths.unsqueeze(1)  # (N, T)
        # Cumulative log-probs per label; padded frames add 0 so the sums stay finite.
        x_valid = self.x.masked_fill(~self.valid.unsqueeze(2), 0.0)
        self.cumulative = x_valid.cumsum(dim=1)  # (N, T, V)

    def select(self, index: Tensor) -> CTCPrefixScorer:
        """The scorer for rows ``index`` (N',) of this one."""
        new = object.__new__(CTCPrefixScorer)
        new.x, new.lengths, new.valid = self.x[index], self.lengths[index], self.valid[index]
        new.cumulative, new.blank, new.eos = self.cumulative[index], self.blank, self.eos
        return new

    def initial_state(self) -> CTCPrefixState:
        """The empty prefix (SOS): all frames blank so far."""
        blank_cum = self.cumulative[:, :, self.blank]  # (N, T)
        r_b = blank_cum.masked_fill(~self.valid, _NEG_INF)
        r = torch.stack([torch.full_like(r_b, _NEG_INF), r_b], dim=2)  # (N, T, 2)
        n = r.shape[0]
        return CTCPrefixState(r, r.new_zeros(n), torch.full((n,), -1, device=r.device))

    def score(self, state: CTCPrefixState) -> tuple[Tensor, Tensor]:
        """Scores of all V extensions: (delta (N, V) = psi(g + c) - psi(g), r_next (N, T, 2, V)).

        ``delta`` is ``-inf`` for impossible extensions and for the blank; for EOS it scores the
        prefix as complete.
        """
        n, t_max, vocab = self.x.shape
        r_n, r_b = state.r[:, :, 0], state.r[:, :, 1]  # (N, T)
        phi = torch.logaddexp(r_n, r_b).unsqueeze(2).expand(n, t_max, vocab).clone()  # (N, T, V)
        repeat = state.last >= 0
        rows = torch.nonzero(repeat).squeeze(1)
        phi[rows, :, state.last[rows]] = r_b[rows]  # a repeated character needs a blank between
        # phi shifted one frame later, with phi[-1] = log 1 for the empty prefix only.
        start = torch.where(repeat, _NEG_INF, 0.0).to(phi.dtype)  # (N,)
        phi_prev = torch.cat([start.view(n, 1, 1).expand(n, 1, vocab), phi[:, :-1]], dim=1)
        phi_prev = phi_prev.masked_fill(~self.valid.unsqueeze(2), _NEG_INF)  # (N, T, V)
        cum = self.cumulative  # C[t] (N, T, V)
        cum_before = cum - self.x.masked_fill(~self.valid.unsqueeze(2), 0.0)  # C[t - 1]
        # r_n(g+c)[t] = sum_{tau<=t} phi[tau - 1] * prod_{tau<=s<=t} p_s(c)
        new_n = cum + torch.logcumsumexp(phi_prev - cum_before, dim=1)  # (N, T, V)
        new_n = new_n.masked_fill(~self.valid.unsqueeze(2), _NEG_INF)
        # r_b(g+c)[t] = sum_{tau<t} r_n(g+c)[tau] * prod_{tau<s<=t} p_s(blank)
        blank_cum = cum[:, :, self.blank].unsqueeze(2)  # (N, T, 1)
        inner = torch.logcumsumexp(new_n - blank_cum, dim=1)  # (N, T, V), sums over tau <= t
        new_b = blank_cum + torch.cat([inner.new_full((n, 1, vocab), _NEG_INF), inner[:, :-1]], 1)
        new_b = new_b.masked_fill(~self.valid.unsqueeze(2), _NEG_INF)
        psi = torch.logsumexp(phi_prev + self.x, dim=1)  # (N, V)
        psi[:, self.eos] = self._complete(state.r)
        psi[:, self.blank] = _NEG_INF
        delta = torch.where(
            torch.isfinite(state.psi).unsqueeze(1), psi - state.psi.unsqueeze(1), _NEG_INF
        )
        delta = delta.masked_fill(torch.isnan(delta), _NEG_INF)
        return delta, torch.stack([new_n, new_b], dim=2)  # (N, V), (N, T, 2, V)

    def _complete(self, r: Tensor) -> Tensor:
        """log P(prefix is the whole transcript) from r (N, T, 2): the total at the last frame."""
        last = (self.lengths - 1).view(-1, 1, 1).expand(-1, 1, 2)  # (N, 1, 2)
        return torch.logsumexp(r.gather(1, last).squeeze(1), dim=1)  # (N,)

    def advance(
        self, r_next: Tensor, delta: Tensor, state: CTCPrefixState, rows: Tensor, tokens: Tensor
    ) -> CTCPrefixState:
        """States of the chosen extensions: scored row ``rows[i]`` extended by ``tokens[i]``."""
        r = r_next[rows, :, :, tokens]  # (N', T, 2)
        psi = state.psi[rows] + delta[rows, tokens]
        return CTCPrefixState(r, psi, tokens)
