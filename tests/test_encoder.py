"""Tests for speechattn/nn/encoder.py: packing, pyramidal lengths, conv front-end."""

import pytest
import torch

from speechattn.nn.encoder import (
    ENCODERS,
    BiLSTMEncoder,
    Encoder,
    EncoderConfig,
    build_encoder,
    lengths_to_mask,
    reduced_lengths,
)


def make(**kwargs) -> BiLSTMEncoder:
    torch.manual_seed(0)
    config = EncoderConfig(hidden_dim=4, **kwargs)
    return BiLSTMEncoder(config, input_dim=5).eval()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_layers": 1},
        {"num_layers": 3, "pyramid": 2},
        {"num_layers": 2, "pyramid": 1, "input_halvings": 1},
        {"num_layers": 2, "pyramid": 1, "conv_channels": 6, "conv_layers": 2, "conv_kernel": 3},
    ],
)
def test_padded_batch_equals_each_sequence_alone(kwargs):
    encoder = make(**kwargs)
    lengths = torch.tensor([11, 4, 7, 1])
    x = torch.randn(4, 11, 5)
    x = x * lengths_to_mask(lengths, 11).unsqueeze(2)  # garbage-free padding is not required,
    x[1, 4:] = 123.0  # ...so put garbage in the padding of one row: it must be ignored
    outputs, out_lengths = encoder(x, lengths)
    for b, length in enumerate(lengths.tolist()):
        alone, alone_length = encoder(x[b : b + 1, :length], lengths[b : b + 1])
        assert alone_length.item() == out_lengths[b].item()
        n = alone_length.item()
        torch.testing.assert_close(outputs[b, :n], alone[0], atol=1e-6, rtol=1e-5)
        assert torch.all(outputs[b, n:] == 0)


@pytest.mark.parametrize(
    ("pyramid", "lengths", "expected"),
    [
        (0, [16, 9, 1], [16, 9, 1]),
        (1, [16, 9, 1], [8, 5, 1]),
        (3, [16, 9, 1], [2, 2, 1]),
        (3, [100, 17, 8], [13, 3, 1]),
    ],
)
def test_pyramidal_reduction_gives_documented_lengths(pyramid, lengths, expected):
    lengths = torch.tensor(lengths)
    assert reduced_lengths(lengths, pyramid).tolist() == expected
    encoder = make(num_layers=pyramid + 1, pyramid=pyramid)
    outputs, out_lengths = encoder(torch.randn(3, int(lengths.max()), 5), lengths)
    assert out_lengths.tolist() == expected
    assert outputs.shape == (3, max(expected), 8)


def test_input_halvings_stack_consecutive_frames_before_the_first_layer():
    stacked = make(num_layers=2, pyramid=1, input_halvings=1)
    assert stacked.layers[0].input_size == 10
    lengths = torch.tensor([9, 4])
    x = torch.randn(2, 9, 5)
    outputs, out_lengths = stacked(x, lengths)
    assert out_lengths.tolist() == [3, 1] == stacked.output_lengths(lengths).tolist()
    # the same as an encoder fed frames (2t, 2t+1) side by side, odd lengths padded with a zero
    plain = BiLSTMEncoder(EncoderConfig(hidden_dim=4, num_layers=2, pyramid=1), input_dim=10)
    plain.load_state_dict(stacked.state_dict())
    pairs = torch.cat([x, torch.zeros(2, 1, 5)], dim=1).reshape(2, 5, 10)
    expected, expected_lengths = plain.eval()(pairs, torch.tensor([5, 2]))
    assert expected_lengths.tolist() == [3, 1]
    torch.testing.assert_close(outputs, expected)


def test_backward_reaches_every_parameter():
    encoder = make(num_layers=2, pyramid=1, conv_channels=3, conv_layers=1, conv_kernel=3).train()
    outputs, _ = encoder(torch.randn(2, 6, 5), torch.tensor([6, 3]))
    outputs.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in encoder.parameters())


def test_bad_configs_raise_with_the_value():
    with pytest.raises(ValueError, match="got 3"):
        BiLSTMEncoder(EncoderConfig(num_layers=3, pyramid=3), 80)
    with pytest.raises(ValueError, match="got -1"):
        BiLSTMEncoder(EncoderConfig(input_halvings=-1), 80)
    with pytest.raises(ValueError, match="at least one frame"):
        make()(torch.randn(2, 3, 5), torch.tensor([3, 0]))


def test_padded_cpu_path_equals_packed_path_forward_and_backward():
    from speechattn.nn.encoder import packed_bilstm, padded_bilstm

    torch.manual_seed(1)
    lstm = torch.nn.LSTM(5, 4, batch_first=True, bidirectional=True)
    lengths = torch.tensor([9, 3, 6])
    x = torch.randn(3, 9, 5, requires_grad=True)
    packed = packed_bilstm(lstm, x, lengths)
    grads_packed = torch.autograd.grad(packed.pow(2).sum(), [x, *lstm.parameters()])
    padded = padded_bilstm(lstm, x, lengths)
    grads_padded = torch.autograd.grad(padded.pow(2).sum(), [x, *lstm.parameters()])
    torch.testing.assert_close(padded, packed, atol=1e-6, rtol=1e-5)
    for a, b in zip(grads_padded, grads_packed, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_every_registered_encoder_follows_the_protocol():
    for kind in ENCODERS:
        config = EncoderConfig(kind=kind, hidden_dim=3, num_layers=2, pyramid=1)
        encoder = build_encoder(config, input_dim=5)
        assert isinstance(encoder, Encoder)
        lengths = torch.tensor([9, 4])
        outputs, out_lengths = encoder(torch.randn(2, 9, 5), lengths)
        assert outputs.shape == (2, 5, encoder.output_dim)
        assert torch.equal(out_lengths, encoder.output_lengths(lengths))
        assert outputs[1, int(out_lengths[1]):].abs().sum() == 0  # zero on padding


def test_unknown_encoder_kind_names_the_choices():
    with pytest.raises(ValueError, match=r"unknown encoder kind 'conformer'; choose one of \['bilstm'\]"):
        build_encoder(EncoderConfig(kind="conformer"), input_dim=4)
