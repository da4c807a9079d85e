"""CTC prefix scores for joint attention/CTC beam search (Watanabe et al., 2017), vectorized.

Shapes: B utterances, G hypotheses per utterance (the beams), N = B x G hypotheses (the G of one
utterance consecutive), T encoder frames, V vocabulary size. The scorer holds each utterance's
frames once; the states hold one row per hypothesis.

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

    Per step, :meth:`score` gives the prefix score of all V extensions of every hypothesis, and
    :meth:`advance` runs the two recursions for the extensions the beam keeps only. In probability
    space ``psi(g + c)`` is a dot product over frames, ``sum_t exp(phi[t - 1]) * p_t(c)``, one batched
    matrix product for all c (rescaled by the largest ``phi`` so nothing overflows).

    Args:
        log_probs: (B, T, V) CTC log-probabilities, one row per utterance.
        lengths: (B,) valid frames per utterance (>= 1).
        blank: the blank id; eos: the end-of-sentence id (scored as "the prefix is complete").

    The states it scores and advances have G rows per utterance (:meth:`initial_state`).
    """

    _PER_UTTERANCE = ("x", "lengths", "valid", "cumulative", "before", "probs", "blank_cumulative")

    def __init__(self, log_probs: Tensor, lengths: Tensor, blank: int, eos: int) -> None:
        self.x = log_probs.double()  # (B, T, V)
        self.lengths = lengths.to(log_probs.device, torch.long)
        self.blank, self.eos = blank, eos
        frames = torch.arange(self.x.shape[1], device=self.x.device)
        self.valid = frames.unsqueeze(0) < self.lengths.unsqueeze(1)  # (B, T)
        # Cumulative log-probs per label; padded frames add 0 so the sums stay finite.
        x_valid = self.x.masked_fill(~self.valid.unsqueeze(2), 0.0)
        self.cumulative = x_valid.cumsum(dim=1)  # (B, T, V): C[t]
        self.before = self.cumulative - x_valid  # (B, T, V): C[t - 1]
        self.probs = x_valid.exp().masked_fill(~self.valid.unsqueeze(2), 0.0)  # (B, T, V)
        self.blank_cumulative = self.cumulative[:, :, blank].contiguous()  # (B, T)

    def select(self, index: Tensor) -> CTCPrefixScorer:
        """The scorer for utterances ``index`` (a (B,) bool mask or ids) of this one."""
        new = object.__new__(CTCPrefixScorer)
        for name in self._PER_UTTERANCE:
            setattr(new, name, getattr(self, name)[index])
        new.blank, new.eos = self.blank, self.eos
        return new

    def initial_state(self, groups: int = 1) -> CTCPrefixState:
        """The empty prefix (SOS), all frames blank so far, for ``groups`` hypotheses per
        utterance."""
        r_b = self.blank_cumulative.masked_fill(~self.valid, _NEG_INF)
        r = torch.stack([torch.full_like(r_b, _NEG_INF), r_b], dim=2)  # (B, T, 2)
        r = r.repeat_interleave(groups, dim=0)  # (N, T, 2)
        n = r.shape[0]
        return CTCPrefixState(r, r.new_zeros(n), torch.full((n,), -1, device=r.device))

    def _groups(self, state: CTCPrefixState) -> int:
        """G, the hypotheses per utterance in ``state``."""
        return state.r.shape[0] // self.x.shape[0]

    def _shifted(self, phi: Tensor, last: Tensor, valid: Tensor) -> Tensor:
        """phi (N, T) one frame later: ``phi[t - 1]``, with ``phi[-1] = log 1`` for the empty prefix
        only (``last`` < 0), and -inf on padded frames."""
        start = torch.where(last >= 0, _NEG_INF, 0.0).to(phi.dtype).unsqueeze(1)  # (N, 1)
        return torch.cat([start, phi[:, :-1]], dim=1).masked_fill(~valid, _NEG_INF)

    def score(self, state: CTCPrefixState) -> Tensor:
        """delta (N, V) = psi(g + c) - psi(g) for every extension c.

        ``delta`` is ``-inf`` for impossible extensions and for the blank; for EOS it scores the
        prefix as complete.
        """
        batch, frames, vocab = self.x.shape
        groups = self._groups(state)
        valid = self.valid.repeat_interleave(groups, dim=0)  # (N, T)
        r_n, r_b = state.r[:, :, 0], state.r[:, :, 1]  # (N, T)
        phi_prev = self._shifted(torch.logaddexp(r_n, r_b), state.last, valid)  # (N, T)
        peak = phi_prev.max(dim=1, keepdim=True).values  # (N, 1)
        peak = torch.where(torch.isfinite(peak), peak, 0.0)
        weights = (phi_prev - peak).exp().view(batch, groups, frames)
        mass = torch.bmm(weights, self.probs).view(-1, vocab)  # (B, G, T) @ (B, T, V) -> (N, V)
        psi = mass.log() + peak
        rows = torch.nonzero(state.last >= 0).squeeze(1)
        if len(rows):  # a repeated character needs a blank between: phi[t - 1] = r_b[t - 1]
            last, utts = state.last[rows], torch.div(rows, groups, rounding_mode="floor")
            blank_prev = self._shifted(r_b[rows], last, valid[rows])  # (R, T)
            psi[rows, last] = torch.logsumexp(blank_prev + self.x[utts, :, last], dim=1)
        psi[:, self.eos] = self._complete(state.r, groups)
        psi[:, self.blank] = _NEG_INF
        delta = torch.where(
            torch.isfinite(state.psi).unsqueeze(1), psi - state.psi.unsqueeze(1), _NEG_INF
        )
        return delta.masked_fill(torch.isnan(delta), _NEG_INF)

    def _complete(self, r: Tensor, groups: int) -> Tensor:
        """log P(prefix is the whole transcript) from r (N, T, 2): the total at the last frame."""
        ends = (self.lengths - 1).repeat_interleave(groups)  # (N,)
        last = ends.view(-1, 1, 1).expand(-1, 1, 2)  # (N, 1, 2)
        return torch.logsumexp(r.gather(1, last).squeeze(1), dim=1)  # (N,)

    def advance(
        self, state: CTCPrefixState, delta: Tensor, rows: Tensor, tokens: Tensor
    ) -> CTCPrefixState:
        """States of the chosen extensions: hypothesis ``rows[i]`` extended by ``tokens[i]``
        (``delta`` from :meth:`score` on ``state``)."""
        utts = torch.div(rows, self._groups(state), rounding_mode="floor")  # (N',) utterances
        r, last, valid = state.r[rows], state.last[rows], self.valid[utts]  # (N', T, 2), ...
        r_n, r_b = r[:, :, 0], r[:, :, 1]  # (N', T)
        repeat = (tokens == last).unsqueeze(1)
        phi_prev = self._shifted(torch.where(repeat, r_b, torch.logaddexp(r_n, r_b)), last, valid)
        cum = self.cumulative[utts, :, tokens]  # (N', T): C[t] of each chosen character
        # r_n(g+c)[t] = sum_{tau<=t} phi[tau - 1] * prod_{tau<=s<=t} p_s(c)
        new_n = cum + torch.logcumsumexp(phi_prev - self.before[utts, :, tokens], dim=1)
        new_n = new_n.masked_fill(~valid, _NEG_INF)
        # r_b(g+c)[t] = sum_{tau<t} r_n(g+c)[tau] * prod_{tau<s<=t} p_s(blank)
        blank_cum = self.blank_cumulative[utts]  # (N', T)
        inner = torch.logcumsumexp(new_n - blank_cum, dim=1)  # sums over tau <= t
        new_b = blank_cum + torch.cat([inner.new_full((len(rows), 1), _NEG_INF), inner[:, :-1]], 1)
        new_b = new_b.masked_fill(~valid, _NEG_INF)
        psi = state.psi[rows] + delta[rows, tokens]
        return CTCPrefixState(torch.stack([new_n, new_b], dim=2), psi, tokens)
