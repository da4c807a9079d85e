"""The attention family, chosen by name from a registry, all stateless.

Shapes: B batch, T encoder frames, Dq query dim, Dm memory (encoder output) dim, A attention dim.

Every attention module has the same call::

    keys = attention.prepare(memory)                        # once per utterance batch
    context, weights, state = attention(query, memory, mask, state, keys)

- ``query`` (B, Dq): the decoder's state at this step.
- ``memory`` (B, T, Dm): encoder outputs; ``mask`` (B, T) bool, True on real frames.
- ``state``: :class:`AttentionState` from the previous step (or :func:`initial_state`).
- ``context`` (B, Dm), ``weights`` (B, T) summing to 1 with exactly 0 on padded frames.

Groups: ``query`` and ``state`` may have G rows per memory row, (B x G, ...) with the G rows of
one memory row consecutive (beam search: the K hypotheses of one utterance). ``context``,
``weights`` and the new state then have B x G rows too, and the memory, its mask and its keys are
never repeated per hypothesis: the additive kinds broadcast the keys and the context is one
(G, T) @ (T, Dm) product per memory row.

Nothing is remembered between calls: the running state goes in and comes out explicitly, so a
module can never leak the last batch's mask into the next one.

Kinds (``ATTENTION``):
- ``dot``: Luong's dot score ``q . m`` (needs Dq == Dm).
- ``scaled_dot``: the dot score divided by ``sqrt(Dm)`` (Vaswani et al. 2017), so that the
  softmax does not saturate as the dimension grows (needs Dq == Dm).
- ``general``: Luong's bilinear score ``q^T W m``.
- ``additive``: Bahdanau's concat score ``v^T tanh(W q + U m + b)``.
- ``luong_location``: Luong's location-based score ``W q``: one score per frame position from the
  query alone, over at most ``max_frames`` frames (the first T of them are used, masked to the real
  ones); the memory enters only through the context.
- ``location``: Chorowski et al. (2015) location-aware score: ``additive`` plus features from a 1-D
  convolution over the previous and the cumulative attention weights.
- ``forward``: forward attention (Zhang et al. 2018) on the ``location`` score: a step's weights are
  ``(w_prev(t) + w_prev(t - 1)) * y(t)``, renormalized, with ``y`` the location attention's, so the
  attended frames can advance by at most one per step. Starts with all weight on frame 0.
- ``dca``: dynamic convolution attention (Battenberg et al. 2019), for synthesis: no content term;
  static filters and filters generated from the query, both over the previous weights, plus the
  log of a fixed causal beta-binomial prior filter that only moves mass forward. Starts with all
  weight on frame 0.
- ``gmm``: Graves' Gaussian-mixture attention in the form of the same paper (its V2): ``mixtures``
  components whose means only move forward (``mean += softplus(.)`` each step). Its score is the
  log of the mixture density at each frame, so the shared masked softmax renormalizes it over the
  real frames; the means travel in ``AttentionState.position``.

Global vs local: every kind attends globally by default. ``window=W`` makes it local: only frames
within ``[focus - window_backward, focus + W]`` of the previous step's focus (argmax of the previous
weights) can be attended, which may also be switched on at inference only (``attention.window = 4``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from speechattn.nn.functional import tanh_energies

__all__ = [
    "ATTENTION",
    "AttentionConfig",
    "AttentionState",
    "Attention",
    "DotAttention",
    "ScaledDotAttention",
    "LuongLocationAttention",
    "GeneralAttention",
    "AdditiveAttention",
    "LocationAttention",
    "ForwardAttention",
    "DynamicConvolutionAttention",
    "GMMAttention",
    "build_attention",
    "initial_state",
    "query_groups",
    "window_mask",
]


@dataclass
class AttentionConfig:
    """Hyper-parameters of one attention module (the dims are filled in by the decoder)."""

    kind: str = "location"
    attention_dim: int = 128
    location_channels: int = 32
    location_kernel: int = 31
    window: int | None = None  # local attention: +-window frames around the previous focus
    window_backward: int | None = None  # frames allowed behind the focus (default: window)
    temperature: float = 1.0  # scores are divided by this before the softmax
    max_frames: int = 1024  # luong_location: the longest memory it can score
    prior_size: int = 11  # dca: taps of the causal beta-binomial prior filter
    prior_alpha: float = 0.1  # dca: the prior's beta-binomial alpha and beta (mean shift
    prior_beta: float = 0.9  #   of about (prior_size - 1) * alpha / (alpha + beta) frames)
    mixtures: int = 5  # gmm: number of mixture components


class AttentionState(NamedTuple):
    """What attention carries from one decoder step to the next.

    weights: (B, T) the previous step's weights (all zeros before the first step, or all on frame
        0 for kinds that convolve them).
    cumulative: (B, T) the sum of all previous weights.
    position: (B, K) a kind's own running position (``gmm``: its K means, in frames); None for
        the kinds that need none.
    """

    weights: Tensor
    cumulative: Tensor
    position: Tensor | None = None


def initial_state(memory: Tensor) -> AttentionState:
    """Zero weights for a (B, T, Dm) memory: the focus starts at frame 0."""
    zeros = memory.new_zeros(memory.shape[:2])  # (B, T)
    return AttentionState(zeros, zeros)


def window_mask(
    previous: Tensor, mask: Tensor, forward: int, backward: int | None = None
) -> Tensor:
    """Restrict ``mask`` (B, T) to ``[focus - backward, focus + forward]`` around argmax(previous).

    Rows whose window would contain no real frame keep their full mask, so a step can always attend.
    """
    backward = forward if backward is None else backward
    frames = torch.arange(mask.shape[1], device=mask.device)  # (T,)
    focus = previous.argmax(dim=1, keepdim=True)  # (B, 1)
    local = (frames >= focus - backward) & (frames <= focus + forward) & mask  # (B, T)
    empty = ~local.any(dim=1, keepdim=True)
    return torch.where(empty, mask, local)


class Attention(nn.Module):
    """Base class: subclasses define ``prepare`` and ``score``; masking and softmax live here."""

    def __init__(self, config: AttentionConfig) -> None:
        super().__init__()
        if config.temperature <= 0:
            raise ValueError(f"attention temperature must be > 0, got {config.temperature}")
        if config.window is not None and config.window < 0:
            raise ValueError(f"attention window must be >= 0 or None, got {config.window}")
        self.window = config.window
        self.window_backward = config.window_backward
        self.temperature = config.temperature

    def initial_state(self, memory: Tensor) -> AttentionState:
        """The state before the first step, for a (B, T, Dm) memory."""
        return initial_state(memory)

    def prepare(self, memory: Tensor) -> Tensor:
        """Per-frame keys (B, T, K) computed once per utterance batch."""
        return memory

    def score_step(
        self, query: Tensor, keys: Tensor, state: AttentionState
    ) -> tuple[Tensor, Tensor | None]:
        """Scores (B, T) and the next ``state.position``; kinds with a position override this."""
        return self.score(query, keys, state), state.position

    def score(self, query: Tensor, keys: Tensor, state: AttentionState) -> Tensor:
        """Unnormalized scores (B, T)."""
        raise NotImplementedError

    def forward(
        self,
        query: Tensor,
        memory: Tensor,
        mask: Tensor,
        state: AttentionState,
        keys: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, AttentionState]:
        """One attention step: (B, Dq), (B, T, Dm), (B, T) -> context (B, Dm), weights (B, T), state."""
        if keys is None:
            keys = self.prepare(memory)
        batch, frames, width = memory.shape
        groups = query_groups(query, memory)
        if groups > 1:
            mask = mask.repeat_interleave(groups, dim=0)  # (B G, T)
        if self.window is not None:
            mask = window_mask(state.weights, mask, self.window, self.window_backward)
        scores, position = self.score_step(query, keys, state)
        scores = (scores / self.temperature).masked_fill(~mask, float("-inf"))  # (B G, T)
        weights = torch.softmax(scores, dim=1)  # (B G, T); exp(-inf) is exactly 0 on padding
        # (B, G, T) @ (B, T, Dm): one product per memory row for all of its G query rows
        context = torch.bmm(weights.view(batch, groups, frames), memory).view(-1, width)
        return context, weights, AttentionState(weights, state.cumulative + weights, position)


def query_groups(query: Tensor, memory: Tensor) -> int:
    """G, the query rows per memory row: (B x G, Dq) against (B, T, Dm)."""
    rows, batch = query.shape[0], memory.shape[0]
    if batch == 0 or rows % batch:
        raise ValueError(f"attention: {rows} query rows for {batch} memory rows; need a multiple")
    return rows // batch


def _dot_scores(query: Tensor, keys: Tensor) -> Tensor:
    """(B G, D) queries against (B, T, D) keys -> (B G, T) dot products."""
    batch, frames, width = keys.shape
    grouped = query.view(batch, -1, width).transpose(1, 2)  # (B, D, G)
    return torch.bmm(keys, grouped).transpose(1, 2).reshape(-1, frames)  # (B, T, G) -> (B G, T)


class DotAttention(Attention):
    """Luong's dot score ``q . m``."""

    def __init__(self, config: AttentionConfig, query_dim: int, memory_dim: int) -> None:
        super().__init__(config)
        if query_dim != memory_dim:
            raise ValueError(
                f"dot attention needs query_dim == memory_dim, got {query_dim} and {memory_dim} "
                "(use kind='general' for different sizes)"
            )

    def score(self, query: Tensor, keys: Tensor, state: AttentionState) -> Tensor:
        return _dot_scores(query, keys)


class ScaledDotAttention(DotAttention):
    """The dot score scaled by ``1 / sqrt(Dm)``."""

    def __init__(self, config: AttentionConfig, query_dim: int, memory_dim: int) -> None:
        super().__init__(config, query_dim, memory_dim)
        self.scale = memory_dim**-0.5

    def score(self, query: Tensor, keys: Tensor, state: AttentionState) -> Tensor:
        return super().score(query, keys, state) * self.scale


class LuongLocationAttention(Attention):
    """Luong's location-based score ``W q``: a score per frame position, from the query alone."""

    def __init__(self, config: AttentionConfig, query_dim: int, memory_dim: int) -> None:
        super().__init__(config)
        if config.max_frames < 1:
            raise ValueError(f"luong_location max_frames must be >= 1, got {config.max_frames}")
        self.position_scores = nn.Linear(query_dim, config.max_frames)

    def score(self, query: Tensor, keys: Tensor, state: AttentionState) -> Tensor:
        frames = keys.shape[1]
        if frames > self.position_scores.out_features:
            raise ValueError(
                f"luong_location attention scores at most {self.position_scores.out_features} "
                f"frames, got a memory of {frames} (raise attention.max_frames)"
            )
        return self.position_scores(query)[:, :frames]  # (B, max_frames) -> (B, T)


class GeneralAttention(Attention):
    """Luong's general (bilinear) score ``q^T W m``; ``W m`` is precomputed as the keys."""

    def __init__(self, config: AttentionConfig, query_dim: int, memory_dim: int) -> None:
        super().__init__(config)
        self.memory_proj = nn.Linear(memory_dim, query_dim, bias=False)

    def prepare(self, memory: Tensor) -> Tensor:
        return self.memory_proj(memory)  # (B, T, Dq)

    def score(self, query: Tensor, keys: Tensor, state: AttentionState) -> Tensor:
        return _dot_scores(query, keys)


class AdditiveAttention(Attention):
    """Bahdanau's additive (concat) score ``v^T tanh(W q + U m + b)``."""

    def __init__(self, config: AttentionConfig, query_dim: int, memory_dim: int) -> None:
        super().__init__(config)
        self.query_proj = nn.Linear(query_dim, config.attention_dim, bias=True)
        self.memory_proj = nn.Linear(memory_dim, config.attention_dim, bias=False)
        self.energy = nn.Linear(config.attention_dim, 1, bias=False)

    def prepare(self, memory: Tensor) -> Tensor:
        return self.memory_proj(memory)  # (B, T, A)

    def extra_features(self, state: AttentionState, batch: int) -> Tensor | None:
        """Terms added to the energies' argument: None, or a fresh (B, G, T, A) tensor (not a
        view: autograd would copy it back at every in-place op) that :meth:`score` adds into in
        place; ``batch`` is B."""
        return None

    def score(self, query: Tensor, keys: Tensor, state: AttentionState) -> Tensor:
        batch, frames, width = keys.shape
        projected = self.query_proj(query).view(batch, -1, 1, width)  # (B, G, 1, A)
        hidden = self.extra_features(state, batch)
        if hidden is None:
            hidden = keys.unsqueeze(1) + projected  # (B, G, T, A)
        else:  # add into it: no further (B, G, T, A) temporaries, the keys broadcast over G
            hidden.add_(keys.unsqueeze(1)).add_(projected)
        return tanh_energies(hidden, self.energy.weight).view(-1, frames)  # (B G, T)


class LocationAttention(AdditiveAttention):
    """Chorowski's location-aware score: additive plus conv features of past weights."""

    def __init__(self, config: AttentionConfig, query_dim: int, memory_dim: int) -> None:
        super().__init__(config, query_dim, memory_dim)
        if config.location_kernel % 2 != 1:
            raise ValueError(f"location_kernel must be odd, got {config.location_kernel}")
        self.location_conv = nn.Conv1d(
            2,
            config.location_channels,
            config.location_kernel,
            padding=config.location_kernel // 2,
            bias=False,
        )
        self.location_proj = nn.Linear(config.location_channels, config.attention_dim, bias=False)

    def extra_features(self, state: AttentionState, batch: int) -> Tensor:
        past = torch.stack([state.weights, state.cumulative], dim=1)  # (B G, 2, T)
        features = self.location_conv(past).transpose(1, 2)  # (B G, T, C)
        return self.location_proj(features.unflatten(0, (batch, -1)))  # (B, G, T, A)


def _one_hot_start(memory: Tensor) -> AttentionState:
    """All weight on frame 0 (cumulative still zero), for kinds that convolve the past weights."""
    weights = memory.new_zeros(memory.shape[:2])  # (B, T)
    weights[:, 0] = 1.0
    return initial_state(memory)._replace(weights=weights)


class ForwardAttention(LocationAttention):
    """Forward attention: the location score times a transition that stays or moves one frame."""

    FLOOR = 1e-30  # the log of a transition of exactly 0; its gradient is then 0, not NaN

    def initial_state(self, memory: Tensor) -> AttentionState:
        return _one_hot_start(memory)

    def score(self, query: Tensor, keys: Tensor, state: AttentionState) -> Tensor:
        previous = state.weights  # (B, T)
        moved = nn.functional.pad(previous, (1, 0))[:, :-1]  # moved[t] = previous[t - 1]
        # softmax(s + log a) = a * y / sum(a * y) with y = softmax(s): forward attention exactly
        return super().score(query, keys, state) + torch.log((previous + moved).clamp_min(self.FLOOR))


def beta_binomial(size: int, alpha: float, beta: float) -> Tensor:
    """The beta-binomial pmf over 0..size-1 (n = size - 1), as a (size,) tensor summing to 1.

    >>> [round(p, 4) for p in beta_binomial(3, 1.0, 1.0).tolist()]
    [0.3333, 0.3333, 0.3333]
    """
    n = size - 1
    k = torch.arange(size, dtype=torch.float64)
    log_choose = torch.lgamma(torch.tensor(n + 1.0)) - torch.lgamma(k + 1) - torch.lgamma(n - k + 1)

    def log_beta(a: Tensor | float, b: Tensor | float) -> Tensor:
        a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
        return torch.lgamma(a) + torch.lgamma(b) - torch.lgamma(a + b)

    pmf = torch.exp(log_choose + log_beta(k + alpha, n - k + beta) - log_beta(alpha, beta))
    return (pmf / pmf.sum()).float()


class DynamicConvolutionAttention(Attention):
    """Location-relative attention from the previous weights alone (no content term)."""

    PRIOR_FLOOR = 1e-6  # log(prior) is floored here, as in the paper, so a step is never -inf

    def __init__(self, config: AttentionConfig, query_dim: int, memory_dim: int) -> None:
        super().__init__(config)
        kernel, channels = config.location_kernel, config.location_channels
        if kernel % 2 != 1:
            raise ValueError(f"location_kernel must be odd, got {kernel}")
        if config.prior_size < 1 or config.prior_alpha <= 0 or config.prior_beta <= 0:
            raise ValueError(
                f"dca prior needs prior_size >= 1 and alpha, beta > 0, got {config.prior_size}, "
                f"{config.prior_alpha}, {config.prior_beta}"
            )
        self.kernel, self.channels = kernel, channels
        self.static_conv = nn.Conv1d(1, channels, kernel, padding=kernel // 2, bias=False)
        self.filter_net = nn.Sequential(
            nn.Linear(query_dim, config.attention_dim), nn.Tanh(),
            nn.Linear(config.attention_dim, channels * kernel, bias=False),
        )
        self.static_proj = nn.Linear(channels, config.attention_dim, bias=True)
        self.dynamic_proj = nn.Linear(channels, config.attention_dim, bias=False)
        self.energy = nn.Linear(config.attention_dim, 1, bias=False)
        # conv1d correlates; the flipped pmf with left padding gives prior[j] = sum_k P[k] w[j - k]
        prior = beta_binomial(config.prior_size, config.prior_alpha, config.prior_beta)
        self.register_buffer("prior_filter", prior.flip(0).view(1, 1, -1), persistent=False)

    def initial_state(self, memory: Tensor) -> AttentionState:
        return _one_hot_start(memory)

    def score(self, query: Tensor, keys: Tensor, state: AttentionState) -> Tensor:
        batch, frames = state.weights.shape
        previous = state.weights.unsqueeze(1)  # (B, 1, T)
        static = self.static_conv(previous)  # (B, C, T)
        filters = self.filter_net(query).view(batch * self.channels, 1, self.kernel)
        dynamic = nn.functional.conv1d(  # each row convolved with its own C filters
            previous.view(1, batch, frames), filters, padding=self.kernel // 2, groups=batch
        ).view(batch, self.channels, frames)  # (1, B*C, T) -> (B, C, T)
        hidden = self.static_proj(static.transpose(1, 2)) + self.dynamic_proj(dynamic.transpose(1, 2))
        energy = tanh_energies(hidden, self.energy.weight)  # (B, T, A) -> (B, T)
        taps = self.prior_filter.shape[2]
        prior = nn.functional.conv1d(nn.functional.pad(previous, (taps - 1, 0)), self.prior_filter)
        return energy + torch.log(prior.squeeze(1).clamp_min(self.PRIOR_FLOOR))


class GMMAttention(Attention):
    """Gaussian-mixture attention whose K means only move forward."""

    MIN_WIDTH = 0.01  # frames: keeps every component's standard deviation away from zero

    def __init__(self, config: AttentionConfig, query_dim: int, memory_dim: int) -> None:
        super().__init__(config)
        if config.mixtures < 1:
            raise ValueError(f"gmm mixtures must be >= 1, got {config.mixtures}")
        self.mixtures = config.mixtures
        self.params = nn.Sequential(
            nn.Linear(query_dim, config.attention_dim), nn.Tanh(),
            nn.Linear(config.attention_dim, 3 * config.mixtures),
        )

    def initial_state(self, memory: Tensor) -> AttentionState:
        return initial_state(memory)._replace(position=memory.new_zeros(memory.shape[0], self.mixtures))

    def score_step(
        self, query: Tensor, keys: Tensor, state: AttentionState
    ) -> tuple[Tensor, Tensor]:
        if state.position is None:
            raise ValueError("gmm attention needs its means in state.position: start from "
                             "attention.initial_state(memory)")
        log_mix, step, width = self.params(query).chunk(3, dim=1)  # 3 x (B, K)
        means = state.position + nn.functional.softplus(step)  # never moves backwards
        width = nn.functional.softplus(width) + self.MIN_WIDTH
        frames = torch.arange(keys.shape[1], device=keys.device, dtype=query.dtype)  # (T,)
        z = (frames.view(1, -1, 1) - means.unsqueeze(1)) / width.unsqueeze(1)  # (B, T, K)
        log_density = (
            torch.log_softmax(log_mix, dim=1).unsqueeze(1) - torch.log(width).unsqueeze(1)
            - 0.5 * z.square()
        )
        return torch.logsumexp(log_density, dim=2), means  # (B, T), (B, K)


ATTENTION: dict[str, type[Attention]] = {
    "dot": DotAttention,
    "scaled_dot": ScaledDotAttention,
    "luong_location": LuongLocationAttention,
    "general": GeneralAttention,
    "additive": AdditiveAttention,
    "location": LocationAttention,
    "forward": ForwardAttention,
    "dca": DynamicConvolutionAttention,
    "gmm": GMMAttention,
}


def build_attention(config: AttentionConfig, query_dim: int, memory_dim: int) -> Attention:
    """The attention module named by ``config.kind``."""
    try:
        cls = ATTENTION[config.kind]
    except KeyError:
        raise ValueError(
            f"unknown attention kind {config.kind!r}; choose one of {sorted(ATTENTION)}"
        ) from None
    return cls(config, query_dim, memory_dim)
