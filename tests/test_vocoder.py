"""Tests for speechattn/vocoder/: the registry, inverse mel and Griffin-Lim."""

import numpy as np
import pytest
import torch

from speechattn.audio import FeatureConfig, LogMel, mel_filterbank, resample
from speechattn.vocoder import VOCODERS, Vocoder, VocoderConfig, build_vocoder
from speechattn.vocoder.griffin_lim import (
    GriffinLimVocoder,
    linear_spectrogram,
    mel_to_linear,
    spectral_convergence,
)


def _peak_hz(wave: np.ndarray, sample_rate: int) -> tuple[float, float]:
    """Frequency of the FFT peak and the bin width, both in Hz."""
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.argmax(spectrum) * sample_rate / len(wave)), sample_rate / len(wave)


def _small_features() -> FeatureConfig:
    return FeatureConfig(
        sample_rate=8000, n_fft=256, win_length=256, hop_length=80, n_mels=20, f_max=4000.0,
        mel_scale="slaney", norm="slaney", power=1.0,
    )  # fmt: skip


# ---- the registry --------------------------------------------------------------------------


def test_every_registered_vocoder_follows_the_protocol():
    features = _small_features()
    for kind in VOCODERS:
        vocoder = build_vocoder(VocoderConfig(kind=kind, n_iter=2), features)
        assert isinstance(vocoder, Vocoder) and vocoder.sample_rate == 8000
        assert not getattr(vocoder, "training", False)
        for frames in (1, 2, 11):  # a voice that stops at once still gets (F - 1) hops, >= 1
            wave = vocoder(torch.full((frames, 20), -3.0))
            assert wave.shape == (max(frames - 1, 1) * 80,) and torch.isfinite(wave).all()
        assert vocoder(torch.full((3, 11, 20), -3.0)).shape == (3, 800)


def test_unknown_vocoder_kind_names_the_choices():
    with pytest.raises(ValueError, match=r"unknown vocoder kind 'hifigan'; choose one of \['griffin_lim'\]"):
        build_vocoder(VocoderConfig(kind="hifigan"), _small_features())


def _harmonic(seconds: float = 0.5, sample_rate: int = 22050) -> torch.Tensor:
    """220 Hz with 5 harmonics of amplitude 0.5 / k."""
    t = torch.arange(int(seconds * sample_rate), dtype=torch.float64) / sample_rate
    return sum(0.5 / k * torch.sin(2 * torch.pi * 220 * k * t) for k in range(1, 6)).float()


def test_spectral_convergence_values():
    reference = torch.tensor([[3.0, 4.0]])
    assert spectral_convergence(reference, torch.zeros(1, 2)) == 1.0
    assert spectral_convergence(reference, 0.9 * reference) == pytest.approx(0.1)
    assert spectral_convergence(reference, reference) == 0.0
    with pytest.raises(ValueError, match="shapes differ"):
        spectral_convergence(reference, torch.zeros(2, 1))


@pytest.mark.parametrize("config", [FeatureConfig(), FeatureConfig.tts()], ids=["asr", "tts"])
def test_inverse_mel_recovers_smooth_spectrum(config):
    # A smooth envelope (what a mel describes well), varying over 12 frames.
    freqs = torch.linspace(0, config.sample_rate / 2, config.n_freqs)
    linear = torch.exp(-freqs / 2000)[:, None] * (1 + 0.5 * torch.sin(torch.arange(12) / 3))
    linear = linear**config.power  # (F, T) in the config's power domain
    fbank = mel_filterbank(config)
    estimate = mel_to_linear(fbank.T @ linear, config)
    assert estimate.shape == linear.shape and estimate.min() >= 0
    # Relative Frobenius error on the bins between the first and last filter centres:
    # measured 0.012 (asr) and 0.030 (tts).
    centres = fbank.argmax(dim=0)
    covered = slice(int(centres[0]), int(centres[-1]) + 1)
    assert spectral_convergence(linear[covered], estimate[covered]) < 0.05
    # Above f_max (8 kHz for TTS) no filter sees anything: those bins come back as zero.
    assert torch.all(estimate[freqs > config.max_frequency + 50] == 0)


def test_griffin_lim_reconstructs_harmonic_signal():
    config = FeatureConfig.tts()
    magnitude = linear_spectrogram(_harmonic(), config)  # (F, T) = (513, 44)
    vocoder = GriffinLimVocoder(VocoderConfig(n_iter=64, momentum=0.99), config)
    wave = vocoder.linear_to_wave(magnitude)
    assert wave.shape == (43 * 256,)
    # Zero-phase start, 64 fast-GL iterations: measured 0.077 (0.188 without momentum).
    assert spectral_convergence(magnitude, linear_spectrogram(wave, config)) < 0.1


def test_vocoder_inverts_log_mel():
    config = FeatureConfig.tts()
    log_mel = LogMel(config)
    features = log_mel(_harmonic())  # (T, M)
    vocoder = GriffinLimVocoder(VocoderConfig(n_iter=64), config)
    wave = vocoder(features)
    assert wave.shape == (43 * 256,) and torch.isfinite(wave).all()
    # Mel magnitudes of the resynthesis vs the original: measured 0.078.
    assert spectral_convergence(features.exp(), log_mel(wave).exp()) < 0.15
    peak, bin_hz = _peak_hz(wave.numpy(), config.sample_rate)
    assert abs(peak - 220) <= bin_hz  # the fundamental survives
    batch = vocoder(torch.stack([features, features]))
    # Batched FFTs round differently and 64 momentum steps amplify it: compare quality, not samples.
    assert batch.shape == (2, 43 * 256) and torch.equal(batch[0], batch[1])
    assert spectral_convergence(features.exp(), log_mel(batch[0]).exp()) < 0.15


def test_vocoder_power_sharpening_keeps_level_and_asr_power_domain():
    config = FeatureConfig.tts()
    features = LogMel(config)(_harmonic())
    sharp = GriffinLimVocoder(VocoderConfig(n_iter=8, power=1.5), config)(features)
    plain = GriffinLimVocoder(VocoderConfig(n_iter=8), config)(features)
    assert 0.5 < float(sharp.abs().max() / plain.abs().max()) < 2.0
    # Power-2 (ASR) features: the vocoder takes the square root before Griffin-Lim.
    asr = FeatureConfig()
    wave16 = resample(_harmonic(), 22050, 16000)
    out = GriffinLimVocoder(VocoderConfig(n_iter=32), asr)(LogMel(asr)(wave16))
    ratio = float(out.pow(2).mean() / wave16.pow(2).mean())
    assert 0.5 < ratio < 2.0  # energy kept within 3 dB
    with pytest.raises(ValueError, match="\\(T, 80\\)"):
        GriffinLimVocoder(VocoderConfig(), config)(torch.zeros(10, 40))


def test_default_vocoder_keeps_quiet_sounds_at_their_level():
    """A loud tone then the same tone 30 dB quieter, through log-mel and the default vocoder: the
    level difference survives within 6 dB. (Tacotron's power=1.5 sharpening, once our default,
    pushed the quiet half down by ~15 dB more and made recorded speech unrecognizable.)"""
    config = _small_features()
    t = torch.arange(8000) / 8000
    tone = torch.sin(2 * torch.pi * 440 * t)
    wave = torch.cat([0.5 * tone, 0.5 * 10 ** (-30 / 20) * tone])  # 1 s loud, 1 s at -30 dB
    mel = LogMel(config)(wave)  # (F, M)
    out = build_vocoder(VocoderConfig(), config)(mel)
    middle = slice(2000, 6000)  # away from the edges and the step
    loud, quiet = out[:8000][middle], out[8000:][middle]
    drop_db = 20 * torch.log10(loud.pow(2).mean().sqrt() / quiet.pow(2).mean().sqrt())
    assert drop_db.item() == pytest.approx(30.0, abs=6.0)
