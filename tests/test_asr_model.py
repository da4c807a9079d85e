"""Tests for speechattn/asr/model.py, loss.py and specaugment.py."""

import dataclasses

import pytest
import torch

from speechattn.asr.loss import ObjectiveConfig, las_loss
from speechattn.asr.model import LAS, LASConfig, noisy_tokens
from speechattn.asr.specaugment import SpecAugment, SpecAugmentConfig, stretch_time, warp_mel_axis
from speechattn.audio import subtract_utterance_mean
from speechattn.nn.attention import ATTENTION
from speechattn.nn.decoder import FeedbackSchedule
from speechattn.text import EOS, PAD

VOCAB = 12


def make(ctc_weight: float = 0.0, **changes) -> LAS:
    torch.manual_seed(0)
    config = dataclasses.replace(LASConfig.tiny(num_mels=8, ctc_weight=ctc_weight), **changes)
    return LAS(config, VOCAB)


def batch():
    torch.manual_seed(1)
    features = torch.randn(3, 37, 8)
    lengths = torch.tensor([37, 20, 9])
    targets = torch.tensor([[5, 6, 7, 8, EOS], [9, 4, EOS, PAD, PAD], [10, EOS, PAD, PAD, PAD]])
    return features, lengths, targets


def test_shapes_and_default_reduction():
    model = LAS(LASConfig(), VOCAB)
    assert model.config.encoder.pyramid == 3 and model.config.decoder.attention.kind == "location"
    assert not model.has_ctc
    small = make(ctc_weight=0.5).eval()
    features, lengths, targets = batch()
    out = small(features, lengths, targets)
    assert out.logits.shape == (3, 5, VOCAB)
    assert out.encoder_lengths.tolist() == [5, 3, 2]  # ceil(L / 8)
    assert out.attention.shape == (3, 5, 5) and out.ctc_log_probs.shape == (3, 5, VOCAB)
    torch.testing.assert_close(out.attention.sum(-1), torch.ones(3, 5))
    assert torch.all(out.attention[2, :, 2:] == 0)  # padded encoder frames get no attention


@pytest.mark.parametrize("kind", sorted(ATTENTION))
def test_every_registry_attention_builds_and_runs(kind):
    base = LASConfig.tiny(num_mels=8)
    decoder = dataclasses.replace(
        base.decoder,
        hidden_dim=32,
        attention=dataclasses.replace(base.decoder.attention, kind=kind),
    )
    # dot attention needs the decoder state as wide as the encoder output (2 x 16)
    model = LAS(dataclasses.replace(base, decoder=decoder), VOCAB).eval()
    features, lengths, targets = batch()
    assert model(features, lengths, targets).logits.shape == (3, 5, VOCAB)


def test_padded_batch_equals_one_by_one():
    model = make(ctc_weight=0.3).eval()
    features, lengths, targets = batch()
    out = model(features, lengths, targets)
    for b in range(3):
        u = int((targets[b] != PAD).sum())
        alone = model(features[b : b + 1, : lengths[b]], lengths[b : b + 1], targets[b : b + 1, :u])
        torch.testing.assert_close(out.logits[b, :u], alone.logits[0], atol=1e-5, rtol=1e-4)
        t = int(out.encoder_lengths[b])
        torch.testing.assert_close(
            out.ctc_log_probs[b, :t], alone.ctc_log_probs[0], atol=1e-5, rtol=1e-4
        )


def test_utterance_mean_norm_ignores_a_fixed_colouring_and_padding():
    features, lengths, targets = batch()
    colour = torch.randn(1, 1, 8) * 3.0  # a fixed per-bin offset, like a voice's spectral tilt
    coloured = features + colour
    for flag, same in ((True, True), (False, False)):
        model = make(ctc_weight=0.3, utterance_mean_norm=flag).eval()
        plain = model(features, lengths, targets).logits
        shifted = model(coloured, lengths, targets).logits
        assert torch.allclose(plain, shifted, atol=1e-4) is same
    model = make(ctc_weight=0.3, utterance_mean_norm=True).eval()
    out = model(features, lengths, targets)
    for b in range(3):  # the mean is over each utterance's own frames, not the padding
        u = int((targets[b] != PAD).sum())
        alone = model(features[b : b + 1, : lengths[b]], lengths[b : b + 1], targets[b : b + 1, :u])
        torch.testing.assert_close(out.logits[b, :u], alone.logits[0], atol=1e-5, rtol=1e-4)


def test_subtract_utterance_mean_zero_mean_over_valid_frames_and_zero_padding():
    features, lengths, _ = batch()
    out = subtract_utterance_mean(features + 5.0, lengths)
    for b, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(out[b, :n].mean(0), torch.zeros(8), atol=1e-5, rtol=0)
        torch.testing.assert_close(out[b, :n], features[b, :n] - features[b, :n].mean(0))
        assert torch.all(out[b, n:] == 0)


def test_loss_ignores_padding_and_backpropagates_everywhere():
    model = make(ctc_weight=0.3).train()
    features, lengths, targets = batch()
    loss, logs = las_loss(model(features, lengths, targets), targets, 0.3, label_smoothing=0.1)
    assert loss.dim() == 0 and set(logs) == {"att_ce", "acc", "ctc"}
    loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
    # Changing logits at PAD positions does not change the loss.
    model.eval()
    out = model(features, lengths, targets)
    shifted = out._replace(logits=out.logits + 5.0 * (targets == PAD).unsqueeze(-1))
    assert torch.allclose(las_loss(out, targets)[0], las_loss(shifted, targets)[0])


def test_loss_is_per_utterance_average():
    """Sum over characters / B: the mean of single-utterance losses (what makes DDP exact)."""
    model = make(ctc_weight=0.4).eval()
    features, lengths, targets = batch()
    whole, _ = las_loss(model(features, lengths, targets), targets, 0.4, 0.1)
    parts = []
    for b in range(3):
        u = int((targets[b] != PAD).sum())
        out = model(features[b : b + 1, : lengths[b]], lengths[b : b + 1], targets[b : b + 1, :u])
        parts.append(las_loss(out, targets[b : b + 1, :u], 0.4, 0.1)[0])
    torch.testing.assert_close(whole, torch.stack(parts).mean(), atol=1e-4, rtol=1e-5)


def test_scheduled_sampling_changes_inputs_only_when_enabled():
    model = make().eval()
    features, lengths, targets = batch()
    reference = model(features, lengths, targets).logits
    torch.testing.assert_close(
        model(features, lengths, targets, feedback=0.0).logits, reference
    )
    torch.manual_seed(3)
    sampled = model(features, lengths, targets, feedback=1.0).logits
    torch.testing.assert_close(sampled[:, 0], reference[:, 0])  # step 0 always starts from SOS
    assert not torch.allclose(sampled[:, 1:], reference[:, 1:])
    # feedback=1: every step is fed the previous argmax, exactly as greedy decoding does
    speech = model.encode(features, lengths)
    state, tokens, greedy = model.initial_state(speech), torch.full((3,), EOS), []
    for _ in range(targets.shape[1]):
        step_logits, _, state = model.step(tokens, speech, state)
        greedy.append(step_logits)
        tokens = step_logits.argmax(dim=1)
    torch.testing.assert_close(sampled, torch.stack(greedy, dim=1), atol=1e-5, rtol=1e-4)


def test_noisy_tokens_swaps_characters_only_at_about_the_rate():
    torch.manual_seed(0)
    targets = torch.tensor([[5, 6, 7, 8, 9, 10, 11, EOS, PAD, PAD]] * 2000)
    noisy = noisy_tokens(targets, 0.3, VOCAB)
    torch.testing.assert_close(noisy[:, 7:], targets[:, 7:])  # EOS and PAD are kept
    assert noisy[:, :7].min() >= 4 and noisy.max() < VOCAB  # only character ids are drawn
    changed = (noisy[:, :7] != targets[:, :7]).float().mean().item()
    # a swap draws one of the 8 characters, 1 in 8 of them the same one: 0.3 * 7/8 = 0.2625
    assert changed == pytest.approx(0.3 * 7 / 8, abs=0.01)
    torch.testing.assert_close(noisy_tokens(targets, 0.0, VOCAB), targets)


def test_token_noise_feeds_noisy_characters_and_scores_the_clean_targets():
    model = make().eval()
    features, lengths, targets = batch()
    torch.manual_seed(5)
    noisy_out = model(features, lengths, targets, token_noise=0.5).logits
    torch.manual_seed(5)
    fed = noisy_tokens(targets, 0.5, VOCAB)
    assert not torch.equal(fed, targets)
    # the same logits as feeding the noisy copy: the noise is in the inputs only
    torch.testing.assert_close(noisy_out, model(features, lengths, fed).logits)
    clean = model(features, lengths, targets).logits
    torch.testing.assert_close(noisy_out[:, 0], clean[:, 0])  # step 0 always starts from SOS
    assert not torch.allclose(noisy_out, clean)
    with pytest.raises(ValueError, match="token_noise"):
        ObjectiveConfig(token_noise=1.0)


def test_sampling_schedule_ramp():
    config = ObjectiveConfig(feedback=FeedbackSchedule(0.25, 10, 20))
    assert config.feedback.at(5) == 0.0
    assert config.feedback.at(15) == pytest.approx(0.125)
    assert config.feedback.at(20) == config.feedback.at(10_000) == 0.25
    assert ObjectiveConfig().feedback.at(100) == 0.0
    with pytest.raises(ValueError, match="feedback.end=1 is before feedback.start=5"):
        FeedbackSchedule(start=5, end=1)
    with pytest.raises(ValueError, match=r"feedback.probability=2 must be in \[0, 1\]"):
        FeedbackSchedule(probability=2)


def test_specaugment_masks_in_training_only():
    augment = SpecAugment(
        SpecAugmentConfig(freq_masks=2, freq_width=5, time_masks=2, time_width=10)
    )
    x = torch.randn(4, 60, 20)
    assert torch.equal(augment.eval()(x), x)
    torch.manual_seed(0)
    masked = augment.train()(x)
    assert masked.shape == x.shape and (masked == 0).sum() > 0
    zero_rows = (masked == 0).all(dim=2).sum(dim=1)  # masked frames per utterance
    assert len(set(zero_rows.tolist())) > 1  # iid: utterances get their own masks
    off = SpecAugment(SpecAugmentConfig(freq_masks=0, time_masks=0)).train()
    assert torch.equal(off(x), x)


def test_warp_mel_axis_moves_peaks_by_the_factor_and_keeps_unit_factor_exact():
    x = torch.zeros(3, 5, 40)
    x[:, :, 10] = 1.0  # a spectral peak at bin 10 in every frame
    warped = warp_mel_axis(x, torch.tensor([1.0, 1.2, 0.8]))
    assert torch.equal(warped[0], x[0])
    assert warped[1, 0].argmax().item() == 12 and warped[2, 0].argmax().item() == 8
    assert torch.allclose(warped[1], warped[1, :1].expand(5, -1))  # every frame alike
    ramp = torch.arange(40.0).expand(1, 2, 40)  # linear in the bin: interpolation is exact
    assert torch.allclose(warp_mel_axis(ramp, torch.tensor([1.25]))[0, 0, :30], torch.arange(30.0) / 1.25)
    assert warp_mel_axis(ramp, torch.tensor([0.5]))[0, 0, -1] == 39.0  # clamped to the top bin


def test_specaugment_freq_warp_only_in_training_and_per_utterance():
    augment = SpecAugment(SpecAugmentConfig(freq_masks=0, time_masks=0, freq_warp=0.2))
    x = torch.randn(1, 30, 20).expand(6, -1, -1).contiguous()  # 6 copies of one utterance
    assert torch.equal(augment.eval()(x), x)
    torch.manual_seed(0)
    warped = augment.train()(x)
    assert warped.shape == x.shape and not torch.equal(warped, x)
    assert len({tuple(w.flatten()[:50].tolist()) for w in warped}) == 6  # a factor per utterance
    with pytest.raises(ValueError, match="freq_warp=0.7"):
        SpecAugmentConfig(freq_warp=0.7)


def test_stretch_time_scales_lengths_and_interpolates_within_each_utterance():
    x = torch.arange(10.0).reshape(1, 10, 1).expand(3, -1, 2).contiguous()  # frame t holds t
    x[2, 6:] = 0.0  # utterance 2 is 6 frames long
    out, lengths = stretch_time(x, torch.tensor([10, 10, 6]), torch.tensor([1.0, 0.8, 1.5]))
    assert lengths.tolist() == [10, 8, 9] and out.shape == (3, 10, 2)
    assert torch.equal(out[0], x[0])
    torch.testing.assert_close(out[1, :8, 0], torch.arange(8.0) / 0.8)
    expected = (torch.arange(9.0) / 1.5).clamp(max=5.0)  # never reads past its own last frame
    torch.testing.assert_close(out[2, :9, 0], expected)
    assert torch.all(out[1, 8:] == 0) and torch.all(out[2, 9:] == 0)


def test_specaugment_time_stretch_changes_lengths_in_training_only():
    model = LAS(LASConfig.tiny(num_mels=8), 10)
    model.specaugment = SpecAugment(SpecAugmentConfig(freq_masks=0, time_masks=0, time_stretch=0.3))
    x, lengths = torch.randn(4, 64, 8), torch.tensor([64, 64, 40, 20])
    assert torch.equal(model.eval().encode(x, lengths).lengths, model.encode(x, lengths).lengths)
    torch.manual_seed(0)
    stretched, new = model.specaugment.train().augment(x, lengths)
    assert not torch.equal(new, lengths)
    assert torch.all((new >= (lengths * 0.7).floor()) & (new <= (lengths * 1.3).ceil()))
    assert stretched.shape[1] == int(new.max())
    with pytest.raises(ValueError, match="time_stretch=0.6"):
        SpecAugmentConfig(time_stretch=0.6)


def test_config_errors_name_the_value():
    with pytest.raises(ValueError, match="ctc_weight=1.5"):
        LASConfig(ctc_weight=1.5)
    with pytest.raises(ValueError, match="model.num_mels=8"):
        make()(torch.randn(1, 10, 80), torch.tensor([10]), torch.tensor([[EOS]]))
    with pytest.raises(ValueError, match="no CTC head"):
        make().ctc_log_probs(torch.randn(1, 2, 32))
