"""Tests for speechattn/tts/model.py, loss.py and decode.py: shapes, masking, batching, stop."""

import math

import pytest
import torch

from speechattn.nn.attention import AttentionConfig
from speechattn.nn.decoder import DecoderConfig
from speechattn.nn.encoder import EncoderConfig, lengths_to_mask
from speechattn.tts.decode import InferenceConfig, attention_settings, infer
from speechattn.tts.loss import TacotronLoss, TacotronLossConfig, guided_attention_prior
from speechattn.tts.model import (
    PostnetConfig,
    PrenetConfig,
    Tacotron,
    TacotronConfig,
    num_decoder_steps,
)

VOCAB = 12
MELS = 6


def tiny_config(r: int = 2) -> TacotronConfig:
    return TacotronConfig(
        num_mels=MELS,
        reduction_factor=r,
        embedding_dim=8,
        encoder=EncoderConfig(hidden_dim=5, num_layers=1, conv_channels=8, conv_layers=2, conv_kernel=3),
        prenet=PrenetConfig(dims=[7, 6], dropout=0.5),
        decoder=DecoderConfig(
            hidden_dim=9, num_layers=2, attention=AttentionConfig(attention_dim=4, location_channels=2, location_kernel=5)
        ),
        postnet=PostnetConfig(channels=4, layers=3, kernel=3, dropout=0.0),
    )


def make(r: int = 2) -> Tacotron:
    torch.manual_seed(0)
    return Tacotron(tiny_config(r), VOCAB).eval()


def batch(lengths=(7, 4, 2), frames=(9, 6, 3)):
    torch.manual_seed(1)
    text = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    for b, n in enumerate(lengths):
        text[b, :n] = torch.randint(4, VOCAB, (n,))
    mels = torch.randn(len(frames), max(frames), MELS)
    for b, f in enumerate(frames):
        mels[b, f:] = 0.0
    return text, torch.tensor(lengths), mels, torch.tensor(frames)


@pytest.mark.parametrize("r", [1, 2, 3])
def test_teacher_forcing_shapes_and_zero_padding(r):
    model = make(r)
    text, text_lengths, mels, mel_lengths = batch()
    out = model(text, text_lengths, mels, mel_lengths)
    steps = math.ceil(9 / r)
    assert out.mel_before.shape == out.mel_after.shape == (3, steps * r, MELS)
    assert out.stop_logits.shape == (3, steps)
    assert out.alignments.shape == (3, steps, 7)
    for b, (n, f) in enumerate(zip(text_lengths.tolist(), mel_lengths.tolist())):
        assert torch.all(out.mel_after[b, f:] == 0) and torch.all(out.mel_before[b, f:] == 0)
        assert torch.all(out.alignments[b, :, n:] == 0)
        torch.testing.assert_close(out.alignments[b].sum(1), torch.ones(steps))


def test_teacher_inputs_are_go_frame_then_last_frame_of_each_group():
    model = make(r=3)
    mels = torch.arange(2 * 7 * MELS, dtype=torch.float).reshape(2, 7, MELS)
    inputs = model.teacher_inputs(mels)  # groups: frames 0-2, 3-5, 6-8 (7, 8 padded)
    assert inputs.shape == (2, 3, MELS)
    assert torch.all(inputs[:, 0] == 0)
    torch.testing.assert_close(inputs[:, 1], mels[:, 2])
    torch.testing.assert_close(inputs[:, 2], mels[:, 5])


def test_padded_batch_equals_each_item_alone():
    model = make()
    model.config.prenet.dropout_at_inference = False
    text, text_lengths, mels, mel_lengths = batch()
    out = model(text, text_lengths, mels, mel_lengths)
    for b in range(3):
        n, f = int(text_lengths[b]), int(mel_lengths[b])
        alone = model(text[b : b + 1, :n], text_lengths[b : b + 1], mels[b : b + 1, :f], mel_lengths[b : b + 1])
        torch.testing.assert_close(out.mel_after[b, :f], alone.mel_after[0, :f], atol=1e-5, rtol=1e-4)
        steps = int(num_decoder_steps(mel_lengths[b], 2))
        torch.testing.assert_close(out.stop_logits[b, :steps], alone.stop_logits[0, :steps], atol=1e-5, rtol=1e-4)


def test_self_fed_frames_at_the_two_extremes():
    model = make(r=2)
    model.config.prenet.dropout_at_inference = False  # deterministic in eval mode
    text, text_lengths, mels, mel_lengths = batch()
    forced = model(text, text_lengths, mels, mel_lengths)
    almost_never = model(text, text_lengths, mels, mel_lengths, feedback=1e-12)
    for name in ("mel_before", "mel_after", "stop_logits", "alignments"):
        torch.testing.assert_close(getattr(almost_never, name), getattr(forced, name))
    # feedback=1: every step is fed the model's own last frame, exactly as in free running.
    fed = model(text, text_lengths, mels, mel_lengths, feedback=1.0)
    memory, memory_lengths = model.encode(text, text_lengths)
    mask = lengths_to_mask(memory_lengths, memory.shape[1])
    keys, state = model.decoder.prepare(memory), model.decoder.initial_state(memory)
    previous, frames = torch.zeros(3, MELS), []
    for _ in range(fed.stop_logits.shape[1]):
        result = model.step(previous, memory, mask, state, keys, prenet_dropout=False)
        frames.append(result.frames)
        previous, state = result.frames[:, -1], result.state
    free = torch.cat(frames, dim=1) * lengths_to_mask(mel_lengths, 10).unsqueeze(2)
    torch.testing.assert_close(fed.mel_before, free)
    assert not torch.allclose(fed.mel_before, forced.mel_before)


def test_self_fed_frames_train_and_are_checked():
    model = make(r=2).train()
    text, text_lengths, mels, mel_lengths = batch()
    out = model(text, text_lengths, mels, mel_lengths, feedback=0.5)
    out.mel_after.abs().mean().backward()
    assert all(p.grad is not None for p in model.prenet.parameters())
    with pytest.raises(ValueError, match="feedback=1.5"):
        model(text, text_lengths, mels, mel_lengths, feedback=1.5)


def test_feedback_schedule_is_the_one_asr_uses_and_old_names_still_load():
    from speechattn.asr.loss import ObjectiveConfig
    from speechattn.config import config_from_dict

    config = config_from_dict(TacotronLossConfig, {"feedback": {"probability": 0.5, "start": 100, "end": 300}})
    assert [config.feedback.at(s) for s in (0, 100, 200, 300, 5000)] == [0.0, 0.0, 0.25, 0.5, 0.5]
    assert type(config.feedback) is type(ObjectiveConfig().feedback)  # one schedule, both directions
    assert TacotronLossConfig().feedback.at(5000) == 0.0
    old = config_from_dict(TacotronLossConfig, {"feedback_max": 0.5, "feedback_start": 100, "feedback_end": 300})
    assert old.feedback == config.feedback  # a config.yaml saved before the schedule was shared
    asr = config_from_dict(ObjectiveConfig, {"sampling_max": 0.5, "sampling_start": 100, "sampling_end": 300})
    assert asr.feedback == config.feedback
    with pytest.raises(ValueError, match="feedback.probability=2"):
        config_from_dict(TacotronLossConfig, {"feedback": {"probability": 2}})


def test_prenet_dropout_follows_mode_and_config():
    model = make()
    x = torch.ones(4, MELS)
    assert model.prenet_dropout() is True  # dropout_at_inference defaults to on
    assert model.prenet_dropout(override=False) is False
    torch.testing.assert_close(model.prenet(x, dropout=False), model.prenet(x, dropout=False))
    model.train()
    assert model.prenet_dropout(override=False) is True  # training always drops


def test_loss_terms_backward_and_padding_has_no_gradient():
    model = make().train()
    text, text_lengths, mels, mel_lengths = batch()
    mels.requires_grad_(True)
    loss = TacotronLoss(TacotronLossConfig(), reduction_factor=2)
    terms = loss(model(text, text_lengths, mels, mel_lengths), mels, mel_lengths, text_lengths, step=0)
    assert terms.total.dim() == 0 and torch.isfinite(terms.total)
    terms.total.backward()
    assert model.embedding.weight.grad.abs().sum() > 0
    assert model.stop_proj.weight.grad.abs().sum() > 0
    assert torch.all(mels.grad[2, 3:] == 0)  # padded target frames do not matter
    assert set(terms.as_floats()) == {"loss", "mel_before", "mel_after", "stop", "guided", "guided_weight"}


def test_guided_attention_prior_values_and_padding():
    prior = guided_attention_prior(torch.tensor([4, 2]), torch.tensor([4, 3]), 4, 5, sigma=0.2)
    assert prior.shape == (2, 5, 4)
    assert prior[0, 2, 2] == 0  # on the diagonal t/T == u/U
    expected = 1 - math.exp(-((3 / 4 - 0 / 4) ** 2) / (2 * 0.2**2))
    assert prior[0, 0, 3].item() == pytest.approx(expected)
    assert torch.all(prior[1, 3:] == 0) and torch.all(prior[1, :, 2:] == 0)
    assert torch.all(prior[0, 4] == 0)  # step 4 is padding for item 0 (4 steps)


def test_guided_weight_halves_every_half_life_down_to_the_floor():
    loss = TacotronLoss(TacotronLossConfig(guided_weight=2.0, guided_half_life=100, guided_min_weight=0.3), 2)
    assert loss.guided_weight(0) == 2.0
    assert loss.guided_weight(100) == pytest.approx(1.0)
    assert loss.guided_weight(10_000) == 0.3
    constant = TacotronLoss(TacotronLossConfig(guided_weight=2.0, guided_half_life=None), 2)
    assert constant.guided_weight(10_000) == 2.0


def test_stop_loss_targets_the_last_real_step():
    loss = TacotronLoss(TacotronLossConfig(stop_pos_weight=1.0), reduction_factor=2)
    logits = torch.full((2, 3), -20.0)
    logits[0, 2] = 20.0  # item 0: 5 frames -> 3 steps, stop at step 2
    logits[1, 1] = 20.0  # item 1: 4 frames -> 2 steps, stop at step 1; step 2 is padding
    logits[1, 2] = -20.0
    assert loss._stop_loss(logits, torch.tensor([5, 4])).item() < 1e-6
    logits[1, 1] = -20.0
    assert loss._stop_loss(logits, torch.tensor([5, 4])).item() > 1.0


def test_unknown_loss_kind_and_bad_sizes_are_rejected():
    with pytest.raises(ValueError, match="mel_loss='l3'"):
        TacotronLoss(TacotronLossConfig(mel_loss="l3"), 2)
    with pytest.raises(ValueError, match="reduction_factor"):
        Tacotron(TacotronConfig(reduction_factor=0), VOCAB)
    with pytest.raises(ValueError, match="postnet.kernel"):
        Tacotron(TacotronConfig(postnet=PostnetConfig(kernel=4)), VOCAB)


def test_batched_inference_equals_one_by_one():
    model = make()
    text, text_lengths, _, _ = batch()
    config = InferenceConfig(max_decoder_steps=12, prenet_dropout=False, window=3, window_backward=1)
    with torch.no_grad():  # stop logits that rise at different speeds: items stop at different steps
        model.stop_proj.weight.mul_(10.0)
        model.stop_proj.bias.fill_(-0.44)
    out = infer(model, text, text_lengths, config)
    assert len(set(out.decoder_steps.tolist())) == 3 and out.reached_cap.tolist() == [False, False, True]
    for b in range(3):
        n = int(text_lengths[b])
        alone = infer(model, text[b : b + 1, :n], text_lengths[b : b + 1], config)
        f, steps = int(alone.mel_lengths[0]), int(alone.decoder_steps[0])
        assert int(out.mel_lengths[b]) == f and int(out.decoder_steps[b]) == steps
        assert bool(out.reached_cap[b]) == bool(alone.reached_cap[0])
        torch.testing.assert_close(out.mels[b, :f], alone.mels[0, :f], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(out.alignments[b, :steps, :n], alone.alignments[0, :steps], atol=1e-5, rtol=1e-4)
        assert torch.all(out.mels[b, f:] == 0) and torch.all(out.alignments[b, steps:] == 0)


def test_cap_is_honoured_and_reported_when_the_model_never_stops():
    model = make(r=3)
    with torch.no_grad():
        model.stop_proj.bias.fill_(-100.0)
    text, text_lengths, _, _ = batch()
    out = infer(model, text, text_lengths, InferenceConfig(max_decoder_steps=7))
    assert out.reached_cap.tolist() == [True, True, True]
    assert out.decoder_steps.tolist() == [7, 7, 7]
    assert out.mels.shape[1] == 21 and out.mel_lengths.tolist() == [21, 21, 21]


def test_stop_token_ends_decoding_early():
    model = make()
    with torch.no_grad():
        model.stop_proj.bias.fill_(100.0)  # stop after the first step
    text, text_lengths, _, _ = batch()
    out = infer(model, text, text_lengths, InferenceConfig(max_decoder_steps=50))
    assert out.decoder_steps.tolist() == [1, 1, 1] and not out.reached_cap.any()
    assert out.alignments.shape[1] == 1


def test_stop_near_end_ignores_a_stop_before_the_attention_reaches_the_end():
    model = make()
    with torch.no_grad():
        model.stop_proj.bias.fill_(100.0)  # the stop token fires at every step
    text, text_lengths, _, _ = batch()
    for near in (0, 2):
        out = infer(model, text, text_lengths, InferenceConfig(max_decoder_steps=40, stop_near_end=near))
        for b in range(len(text_lengths)):
            peaks = out.alignments[b, : int(out.decoder_steps[b])].argmax(dim=1)
            first = int(text_lengths[b]) - 1 - near  # first position that lets it stop
            assert (peaks[:-1] < first).all()  # every earlier step's stop was ignored
            if not out.reached_cap[b]:
                assert peaks[-1] >= first  # it stopped at the first step near the end
        assert out.decoder_steps.max() > 1  # the untrained attention is slow to get there
    with pytest.raises(ValueError, match="stop_near_end"):
        infer(model, text, text_lengths, InferenceConfig(stop_near_end=-1))


def test_inference_window_is_local_and_restored():
    model = make()
    model.decoder.attention.window = None
    text, text_lengths, _, _ = batch(lengths=(7,), frames=(9,))
    config = InferenceConfig(max_decoder_steps=3, window=1, window_backward=0, prenet_dropout=False)
    with torch.no_grad():
        model.stop_proj.bias.fill_(-100.0)
    out = infer(model, text, text_lengths, config)
    assert model.decoder.attention.window is None  # restored
    # Step 0 starts at frame 0: only frames 0..1 may be attended.
    assert torch.all(out.alignments[0, 0, 2:] == 0)
    with pytest.raises(RuntimeError):
        with attention_settings(model.decoder.attention, 2, 0):
            raise RuntimeError("boom")
    assert model.decoder.attention.window is None


def test_inference_temperature_sharpens_and_is_restored():
    model = make()
    text, text_lengths, _, _ = batch()
    with torch.no_grad():
        model.stop_proj.bias.fill_(-100.0)

    def peak(temperature):
        config = InferenceConfig(
            max_decoder_steps=4, window=None, temperature=temperature, prenet_dropout=False
        )
        return float(infer(model, text, text_lengths, config).alignments.amax(dim=2).mean())

    trained = peak(None)
    uniform = float((1.0 / text_lengths.float()).mean())  # every weight 1 / length
    assert peak(100.0) == pytest.approx(uniform, abs=1e-3) and uniform < trained
    assert peak(0.01) > trained + 0.4
    assert peak(1.0) == pytest.approx(trained) and model.decoder.attention.temperature == 1.0
    with pytest.raises(ValueError, match="temperature"):
        infer(model, text, text_lengths, InferenceConfig(temperature=0.0))


def test_invalid_inference_settings_raise():
    model = make()
    text, text_lengths, _, _ = batch()
    with pytest.raises(ValueError, match="max_decoder_steps"):
        infer(model, text, text_lengths, InferenceConfig(max_decoder_steps=0))
    with pytest.raises(ValueError, match="stop_threshold"):
        infer(model, text, text_lengths, InferenceConfig(stop_threshold=1.5))


@pytest.mark.parametrize("reduce", ["pyramid", "input_halvings"])
def test_an_encoder_that_drops_characters_is_refused(reduce):
    config = tiny_config()
    config.encoder = EncoderConfig(hidden_dim=4, num_layers=2, **{reduce: 1})
    with pytest.raises(ValueError, match="one encoder frame per character"):
        Tacotron(config, vocab_size=10)
