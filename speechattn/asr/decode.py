"""Decoding with :class:`~speechattn.asr.model.LAS`: greedy and batched beam search, always
bounded, and whole datasets decoded in length-sorted batches (:func:`decode_dataset`).

Shapes: B utterances, K beams, N = B x K decoder rows, T input frames, M mel bins, T' encoder
frames, U output steps, V vocabulary size.

Both searches stop every utterance after at most ``max_length(T') = ceil(max_length_ratio * T') +
max_length_offset`` steps; the last step always ends the hypothesis, so no decode runs forever or
returns more than ``max_length - 1`` characters.

Beam search decodes several utterances x beams in one batched decoder step. Each step:

1. every alive row scores all V extensions: ``(1 - w) log p_att(c) + w * delta_ctc(c) +
   l * log p_lm(c | history)``, with ``w = ctc_weight`` and ``delta_ctc`` from
   :class:`~speechattn.asr.ctc_prefix.CTCPrefixScorer` (joint scoring needs a model with a CTC
   head; ``w = 0`` skips it), and ``l = lm_weight`` with a
   :class:`~speechattn.asr.lm.CharNgramLM` (shallow fusion; ``l = 0`` skips it), plus, with a
   :class:`~speechattn.asr.wordlist.WordList`, its costs for leaving the listed words
   (``lexicon_penalty``) and for each word (``word_penalty``);
2. the K best extensions per utterance are kept; those that are EOS become finished hypotheses
   and leave the beam (it refills to K at the next step);
3. an utterance ends when no hypothesis is alive, when no alive hypothesis can beat the best
   finished one any more (see :func:`_utterance_done`), when the alive ones trail the best finished
   raw score by ``end_threshold`` nats, or at its length bound. Ended utterances leave the batch,
   so long ones do not slow short ones.

Finished hypotheses are ranked by ``score / length ** length_penalty`` (length = characters + EOS).
With ``beam_size=1``, ``ctc_weight=0`` and ``lm_weight=0`` beam search returns exactly the greedy
hypothesis.
PAD and BLANK are never emitted.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor
from tqdm import tqdm

from speechattn.asr.ctc_prefix import CTCPrefixScorer, CTCPrefixState
from speechattn.asr.data import ASRDataset
from speechattn.asr.lm import CharNgramLM
from speechattn.asr.model import LAS, SpeechMemory
from speechattn.asr.wordlist import WordList
from speechattn.nn.decoder import DecoderState
from speechattn.text import BLANK, EOS, PAD

__all__ = [
    "SearchConfig",
    "Hypothesis",
    "max_lengths",
    "greedy_search",
    "beam_search",
    "decode",
    "Decoded",
    "iter_decoded",
    "decode_dataset",
]

_NEG_INF = float("-inf")


@dataclass
class SearchConfig:
    """Decoding settings; ``beam_size=1`` with ``ctc_weight=0`` is greedy search."""

    beam_size: int = 1
    ctc_weight: float = 0.0  # joint CTC prefix scoring in beam search (needs a CTC head)
    lm_weight: float = 0.0  # shallow fusion with a character LM in beam search (needs an LM)
    # with a word list (infer.py --lexicon): nats for leaving its words, and per word (a space)
    lexicon_penalty: float = 3.0
    word_penalty: float = 2.0
    length_penalty: float = 1.0  # rank finished hypotheses by score / length ** length_penalty
    max_length_ratio: float = 2.0  # at most ratio x encoder frames + offset output steps
    max_length_offset: int = 10
    end_threshold: float = 10.0  # nats: stop when alive beams are this far below a finished one
    batch_size: int = 16  # utterances decoded together

    def __post_init__(self) -> None:
        if self.beam_size < 1:
            raise ValueError(f"search.beam_size={self.beam_size} must be >= 1")
        if not 0.0 <= self.ctc_weight <= 1.0:
            raise ValueError(f"search.ctc_weight={self.ctc_weight} must be in [0, 1]")
        if self.max_length_ratio <= 0 or self.max_length_offset < 1:
            raise ValueError(
                f"search.max_length_ratio={self.max_length_ratio} must be > 0 and "
                f"max_length_offset={self.max_length_offset} >= 1"
            )
        if self.batch_size < 1:
            raise ValueError(f"search.batch_size={self.batch_size} must be >= 1")
        if self.lm_weight < 0:
            raise ValueError(f"search.lm_weight={self.lm_weight} must be >= 0")
        if self.lexicon_penalty < 0 or self.word_penalty < 0:
            raise ValueError(
                f"search.lexicon_penalty={self.lexicon_penalty} and "
                f"word_penalty={self.word_penalty} must be >= 0"
            )


class Hypothesis(NamedTuple):
    """One decoded utterance: character ids (no SOS/EOS), log score, attention (U, T') or None.

    ``attention`` has one row per emitted character plus one for the EOS step.
    """

    tokens: list[int]
    score: float
    attention: Tensor | None


def max_lengths(encoder_lengths: Tensor, config: SearchConfig) -> Tensor:
    """(B,) encoder frames -> (B,) the most decoder steps (EOS included) each utterance gets."""
    return (
        encoder_lengths.float() * config.max_length_ratio
    ).ceil().long() + config.max_length_offset


def _forbid_specials(logp: Tensor) -> Tensor:
    """(N, V): PAD and BLANK are never emitted."""
    logp[:, PAD] = _NEG_INF
    logp[:, BLANK] = _NEG_INF
    return logp


@torch.no_grad()
def greedy_search(
    model: LAS,
    features: Tensor,
    lengths: Tensor,
    config: SearchConfig | None = None,
    keep_attention: bool = False,
) -> list[Hypothesis]:
    """Argmax decoding of a batch: (B, T, M), (B,) -> B hypotheses (model in eval mode)."""
    config = config or SearchConfig()
    speech = model.encode(features, lengths)
    limits = max_lengths(speech.lengths, config).tolist()
    batch = features.shape[0]
    state = model.initial_state(speech)
    tokens = torch.full((batch,), EOS, dtype=torch.long, device=features.device)
    done = torch.zeros(batch, dtype=torch.bool, device=features.device)
    limit = torch.tensor(limits, device=features.device)
    emitted, scores, weights = [], torch.zeros(batch, dtype=torch.float64), []
    for step in range(max(limits)):
        logits, step_weights, state = model.step(tokens, speech, state)
        logp = _forbid_specials(torch.log_softmax(logits.float(), dim=1))  # (B, V)
        tokens = logp.argmax(dim=1)
        tokens = torch.where(step + 1 >= limit, EOS, tokens)  # the last step always ends
        chosen = logp.gather(1, tokens.unsqueeze(1)).squeeze(1).double().cpu()
        scores += torch.where(done.cpu(), 0.0, chosen)
        emitted.append(torch.where(done, PAD, tokens))
        weights.append(step_weights if keep_attention else None)
        done |= tokens == EOS
        if bool(done.all()):
            break
    ids = torch.stack(emitted, dim=1).tolist()  # (B, U)
    out = []
    for b in range(batch):
        length = ids[b].index(EOS) if EOS in ids[b] else len(ids[b])
        att = None
        if keep_attention:
            att = torch.stack([w[b] for w in weights[: length + 1]])[:, : int(speech.lengths[b])]
            att = att.cpu()
        out.append(Hypothesis(ids[b][:length], float(scores[b]), att))
    return out


class _Beams(NamedTuple):
    """The alive rows of a beam search: K consecutive rows per utterance still being decoded."""

    utt: Tensor  # (b,) original utterance index of each alive utterance (CPU)
    limit: Tensor  # (b,) step bound per utterance (CPU)
    speech: SpeechMemory  # b rows: the K hypotheses of an utterance share its memory and keys
    state: DecoderState
    tokens: Tensor  # (N,) last token
    history: Tensor  # (N, u) emitted tokens
    attention: Tensor | None  # (N, u, T') or None
    scores: Tensor  # (b, K)
    ctc: CTCPrefixState | None
    scorer: CTCPrefixScorer | None

    def select_utts(self, keep: Tensor, beam: int) -> _Beams:
        """Only the utterances ``keep`` (b,) bool of this batch."""
        rows = (torch.nonzero(keep).squeeze(1).unsqueeze(1) * beam + torch.arange(beam)).reshape(-1)
        dev = self.tokens.device
        rows_dev, keep_dev = rows.to(dev), keep.to(dev)
        return _Beams(
            self.utt[keep], self.limit[keep], self.speech.select(keep_dev),
            self.state.select(rows_dev), self.tokens[rows_dev], self.history[rows_dev],
            None if self.attention is None else self.attention[rows_dev],
            self.scores[keep_dev],
            None if self.ctc is None else self.ctc.select(rows_dev),
            None if self.scorer is None else self.scorer.select(keep_dev),
        )  # fmt: skip


def _start_beams(
    model: LAS, features: Tensor, lengths: Tensor, config: SearchConfig, keep_attention: bool
) -> _Beams:
    batch, beam, device = features.shape[0], config.beam_size, features.device
    speech = model.encode(features, lengths)
    limit = max_lengths(speech.lengths, config).cpu()
    scorer = ctc = None
    if config.ctc_weight > 0:
        ctc_log_probs = model.ctc_log_probs(speech.memory)  # (B, T', V)
        scorer = CTCPrefixScorer(ctc_log_probs, speech.lengths, BLANK, EOS)
    rows = torch.arange(batch, device=device).repeat_interleave(beam)  # (N,)
    if scorer is not None:
        ctc = scorer.initial_state(beam)
    scores = torch.full((batch, beam), _NEG_INF, device=device)
    scores[:, 0] = 0.0  # only one live hypothesis (the empty one) at the start
    n = batch * beam
    return _Beams(
        torch.arange(batch), limit, speech, model.initial_state(speech).select(rows),
        torch.full((n,), EOS, dtype=torch.long, device=device),
        torch.zeros(n, 0, dtype=torch.long, device=device),
        features.new_zeros(n, 0, speech.memory.shape[1]) if keep_attention else None,
        scores, ctc, scorer,
    )  # fmt: skip


def _extension_scores(
    model: LAS,
    beams: _Beams,
    config: SearchConfig,
    lm: CharNgramLM | None,
    words: WordList | None,
):
    """Scores (b, K, V) of every extension, plus what is needed to advance the chosen ones."""
    logits, weights, state = model.step(beams.tokens, beams.speech, beams.state)
    logp = _forbid_specials(torch.log_softmax(logits.float(), dim=1))  # (N, V)
    delta = None
    if beams.scorer is not None:
        delta = beams.scorer.score(beams.ctc)  # (N, V)
        logp = (1 - config.ctc_weight) * logp + config.ctc_weight * delta.to(logp.dtype)
    fuse = lm is not None and config.lm_weight > 0
    if fuse or words is not None:
        histories = [[EOS, *row] for row in beams.history.tolist()]  # EOS: the start symbol
    if fuse:
        logp = logp + config.lm_weight * lm.log_probs(histories).to(logp.device)  # (N, V)
    if words is not None:
        costs = words.penalties(histories, config.lexicon_penalty, config.word_penalty)  # (N, V)
        logp = logp + costs.to(logp.device)
    batch, beam = beams.scores.shape
    total = beams.scores.unsqueeze(2) + logp.view(batch, beam, -1)  # (b, K, V)
    return total, weights, state, delta


@torch.no_grad()
def beam_search(
    model: LAS,
    features: Tensor,
    lengths: Tensor,
    config: SearchConfig | None = None,
    keep_attention: bool = False,
    lm: CharNgramLM | None = None,
    words: WordList | None = None,
) -> list[Hypothesis]:
    """Batched beam search: (B, T, M), (B,) -> B best hypotheses (model in eval mode).

    ``lm`` is used when ``config.lm_weight > 0`` (and is then required); ``words``, when given,
    with ``config.lexicon_penalty`` and ``config.word_penalty``.
    """
    config = config or SearchConfig()
    if config.ctc_weight > 0 and not model.has_ctc:
        raise ValueError("search.ctc_weight > 0 needs a model trained with a CTC head")
    if config.lm_weight > 0 and lm is None:
        raise ValueError(
            "search.lm_weight > 0 needs a language model: EXP/lm.json (written by training) "
            "or infer.py --lm FILE; or set search.lm_weight=0"
        )
    beam = config.beam_size
    beams = _start_beams(model, features, lengths, config, keep_attention)
    finished: list[list[tuple[float, float, list[int], Tensor | None]]] = [
        [] for _ in range(features.shape[0])
    ]
    step = 0
    while len(beams.utt) > 0:
        total, weights, state, delta = _extension_scores(model, beams, config, lm, words)
        batch, _, vocab = total.shape
        eos_scores = total[:, :, EOS]  # (b, K) each alive hypothesis ending now
        top_scores, top_index = total.view(batch, beam * vocab).topk(beam, dim=1)  # (b, K)
        origin = top_index // vocab  # (b, K) beam each extension comes from
        tokens = top_index % vocab  # (b, K)
        is_eos = tokens == EOS
        ends = (
            torch.zeros_like(origin).scatter_add_(1, origin, is_eos.long()) > 0
        )  # (b, K) by origin
        last_step = (step + 1 >= beams.limit).to(total.device)  # (b,)
        ends |= last_step.unsqueeze(1)  # at its bound every hypothesis ends
        ends &= torch.isfinite(eos_scores)
        _collect(finished, beams, ends, eos_scores, weights, step, config)
        # EOS extensions have left the beam: their slots are dead until refilled next step.
        alive_scores = top_scores.masked_fill(is_eos, _NEG_INF)
        tokens = tokens.reshape(-1)  # (N,)
        rows = (torch.arange(batch, device=total.device).unsqueeze(1) * beam + origin).reshape(-1)
        attention = None
        if beams.attention is not None:
            attention = torch.cat([beams.attention, weights.unsqueeze(1)], dim=1)[rows]
        ctc = None
        if beams.scorer is not None:
            ctc = beams.scorer.advance(beams.ctc, delta, rows, tokens)
        beams = beams._replace(
            state=state.select(rows), tokens=tokens, attention=attention, scores=alive_scores,
            history=torch.cat([beams.history[rows], tokens.unsqueeze(1)], dim=1), ctc=ctc,
        )  # fmt: skip
        step += 1
        keep = ~_utterance_done(finished, beams, last_step.cpu(), config)
        if not bool(keep.all()):
            beams = beams.select_utts(keep, beam)
    return [_best(hyps, config) for hyps in finished]


def _collect(
    finished,
    beams: _Beams,
    ends: Tensor,
    eos_scores: Tensor,
    weights: Tensor,
    step: int,
    config: SearchConfig,
) -> None:
    """Move the EOS extensions of the beams marked in ``ends`` (b, K) into ``finished``."""
    beam = config.beam_size
    for b, k in torch.nonzero(ends).tolist():
        row = b * beam + k
        raw = float(eos_scores[b, k])
        length = step + 1  # characters + EOS
        att = None
        if beams.attention is not None:
            frames = int(beams.speech.lengths[b])
            att = torch.cat([beams.attention[row], weights[row].unsqueeze(0)])[:, :frames].cpu()
        tokens = beams.history[row].tolist()
        normalized = raw / length**config.length_penalty
        finished[int(beams.utt[b])].append((normalized, raw, tokens, att))


def _utterance_done(finished, beams: _Beams, last_step: Tensor, config: SearchConfig) -> Tensor:
    """(b,) bool: utterances that need no more steps.

    Besides the bound: no alive hypothesis left; or none can still win, because a raw score only
    falls as a hypothesis grows and its length is at most the bound, so ``raw / bound ** penalty``
    bounds its final normalized score; or the alive ones trail the best finished raw score by more
    than ``end_threshold``.
    """
    done = last_step.clone()
    best_alive = beams.scores.max(dim=1).values.cpu().tolist()  # (b,)
    for b, utt in enumerate(beams.utt.tolist()):
        hyps = finished[utt]
        if not math.isfinite(best_alive[b]):
            done[b] = True
        elif hyps:
            best_normalized = max(h[0] for h in hyps)
            best_raw = max(h[1] for h in hyps)
            ceiling = best_alive[b] / float(beams.limit[b]) ** config.length_penalty
            if best_normalized >= ceiling or best_alive[b] < best_raw - config.end_threshold:
                done[b] = True
    return done


def _best(hyps, config: SearchConfig) -> Hypothesis:
    if not hyps:  # only possible with a vocabulary of nothing but reserved ids
        return Hypothesis([], _NEG_INF, None)
    normalized, raw, tokens, att = max(hyps, key=lambda h: h[0])
    return Hypothesis(tokens, raw, att)


def decode(
    model: LAS,
    features: Tensor,
    lengths: Tensor,
    config: SearchConfig | None = None,
    keep_attention: bool = False,
    lm: CharNgramLM | None = None,
    words: WordList | None = None,
) -> list[Hypothesis]:
    """Greedy search when ``beam_size == 1`` and no CTC, LM or word list, beam search otherwise."""
    config = config or SearchConfig()
    plain = config.ctc_weight == 0 and config.lm_weight == 0 and words is None
    if config.beam_size == 1 and plain:
        return greedy_search(model, features, lengths, config, keep_attention)
    return beam_search(model, features, lengths, config, keep_attention, lm, words)


# -- whole datasets ---------------------------------------------------------------------------


class Decoded(NamedTuple):
    """One decoded utterance; ``attention`` (U, T') only when asked for."""

    id: str
    ref: str | None
    hyp: str
    score: float
    seconds: float
    attention: Tensor | None


def iter_decoded(
    model: LAS,
    dataset: ASRDataset,
    search: SearchConfig,
    keep_attention: bool = False,
    progress: bool = False,
    lm: CharNgramLM | None = None,
    words: WordList | None = None,
) -> Iterator[Decoded]:
    """Decode every usable utterance of ``dataset`` in length-sorted batches, yielded as decoded.

    Utterances whose audio fails to load are left out (the dataset logs them).
    """
    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(dataset)), key=lambda i: -dataset.lengths[i])
    chunks = [order[s : s + search.batch_size] for s in range(0, len(order), search.batch_size)]
    for chunk in tqdm(chunks, desc="decode", unit="batch", disable=not progress):
        batch = dataset.batch(chunk, stand_in=False)
        if batch is None:
            continue
        with torch.no_grad():
            hyps = decode(model, batch.features.to(device), batch.lengths.to(device), search,
                          keep_attention, lm, words)  # fmt: skip
        for utt_id, hyp in zip(batch.ids, hyps, strict=True):
            row = dataset.row(utt_id)
            yield Decoded(
                utt_id, row.get("text"), dataset.vocab.decode(hyp.tokens), hyp.score,
                row["duration"], hyp.attention,
            )  # fmt: skip


def decode_dataset(
    model: LAS,
    dataset: ASRDataset,
    search: SearchConfig,
    keep_attention: bool = False,
    progress: bool = False,
    lm: CharNgramLM | None = None,
    words: WordList | None = None,
) -> list[Decoded]:
    """:func:`iter_decoded` collected in dataset order."""
    decoded = iter_decoded(model, dataset, search, keep_attention, progress, lm, words)
    results = {d.id: d for d in decoded}
    return [results[row["id"]] for row in dataset.rows if row["id"] in results]
