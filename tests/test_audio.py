"""Tests for speechattn/audio.py: I/O, resampling, log-mel vs librosa, CMVN."""

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch

from speechattn.audio import (
    AudioError,
    FeatureConfig,
    GlobalCMVN,
    LogMel,
    compute_cmvn,
    load_audio,
    resample,
    save_audio,
)


def _sine(freq: float, sample_rate: int, seconds: float = 1.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _peak_hz(wave: np.ndarray, sample_rate: int) -> tuple[float, float]:
    """Frequency of the FFT peak and the bin width, both in Hz."""
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.argmax(spectrum) * sample_rate / len(wave)), sample_rate / len(wave)


# ---- I/O -----------------------------------------------------------------------------------


def test_load_mono_wav_keeps_rate(tmp_path):
    wave = _sine(440, 16000, 0.25)
    sf.write(tmp_path / "a.wav", wave, 16000, subtype="FLOAT")
    loaded, sr = load_audio(tmp_path / "a.wav")
    assert sr == 16000 and loaded.dtype == torch.float32 and loaded.shape == (4000,)
    assert torch.equal(loaded, torch.from_numpy(wave))
    assert load_audio(tmp_path / "a.wav").original_sample_rate == 16000


def test_load_stereo_downmixes(tmp_path):
    left, right = _sine(440, 8000, 0.1), _sine(1000, 8000, 0.1, amp=0.25)
    sf.write(tmp_path / "s.flac", np.stack([left, right], axis=1), 8000, subtype="PCM_24")
    loaded, sr = load_audio(tmp_path / "s.flac")
    assert sr == 8000 and loaded.shape == (800,)
    np.testing.assert_allclose(loaded.numpy(), (left + right) / 2, atol=1e-6)  # 24-bit quantization


def test_load_ogg(tmp_path):
    sf.write(tmp_path / "a.ogg", _sine(440, 16000, 0.5), 16000, format="OGG", subtype="VORBIS")
    loaded, sr = load_audio(tmp_path / "a.ogg")
    assert sr == 16000 and abs(loaded.shape[0] - 8000) <= 1


def test_load_resamples_and_reports_original_rate(tmp_path):
    sf.write(tmp_path / "a.wav", _sine(440, 22050), 22050)
    result = load_audio(tmp_path / "a.wav", sample_rate=16000)
    wave, sr = result
    assert sr == 16000 and result.original_sample_rate == 22050 and result.resampled
    assert wave.shape == (16000,)
    peak, bin_hz = _peak_hz(wave.numpy(), 16000)
    assert abs(peak - 440) <= bin_hz


def test_resample_keeps_sine_frequency():
    wave = torch.from_numpy(_sine(440, 22050))
    out = resample(wave, 22050, 16000)
    assert out.shape == (16000,)
    peak, bin_hz = _peak_hz(out.numpy(), 16000)
    assert abs(peak - 440) <= bin_hz  # 1 Hz bins: the peak stays on 440 Hz
    assert resample(wave, 22050, 22050) is wave
    with pytest.raises(ValueError, match="new_sr=0"):
        resample(wave, 22050, 0)


def test_silence_is_fine(tmp_path):
    sf.write(tmp_path / "quiet.wav", np.zeros(1600, dtype=np.float32), 16000)
    wave, _ = load_audio(tmp_path / "quiet.wav")
    assert wave.abs().max() == 0 and wave.shape == (1600,)


def _write_nan(path):
    data = _sine(440, 16000, 0.1)
    data[37] = np.nan
    sf.write(path, data, 16000, subtype="FLOAT")


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: None, "no such audio file"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_bytes(b"definitely not a RIFF header" * 10), "not readable audio"),
        (lambda p: sf.write(p, np.zeros(0, dtype=np.float32), 16000), "no samples"),
        (_write_nan, "NaN/inf samples \\(first at sample 37\\)"),
    ],
    ids=["missing", "empty", "garbage", "zero-length", "nan"],
)
def test_bad_files_raise_audio_error_naming_file(tmp_path, make, match):
    path = tmp_path / "bad_utt.wav"
    make(path)
    with pytest.raises(AudioError, match=match) as info:
        load_audio(path)
    assert "bad_utt.wav" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_save_audio_pcm16_clipped_atomic(tmp_path):
    wave = torch.tensor([0.0, 0.5, -0.5, 1.7, -3.0])
    path = save_audio(tmp_path / "out" / "x.wav", wave, 16000)
    info = sf.info(path)
    assert (info.subtype, info.samplerate, info.frames) == ("PCM_16", 16000, 5)
    back, _ = sf.read(path, dtype="int16")
    assert back.tolist() == [0, 16384, -16384, 32767, -32768]
    assert [p.name for p in path.parent.iterdir()] == ["x.wav"]  # no temp file left behind


def test_save_audio_flac_round_trip_and_errors(tmp_path):
    wave = np.stack([_sine(440, 8000, 0.1), _sine(880, 8000, 0.1)])  # (C, S)
    path = save_audio(tmp_path / "x.flac", wave, 8000)
    assert sf.info(path).channels == 2 and sf.info(path).subtype == "PCM_16"
    loaded, _ = load_audio(path)
    np.testing.assert_allclose(loaded.numpy(), wave.mean(axis=0), atol=1 / 32768)
    with pytest.raises(ValueError, match="'.mp3'"):
        save_audio(tmp_path / "x.mp3", wave, 8000)
    with pytest.raises(ValueError, match="NaN"):
        save_audio(tmp_path / "n.wav", np.array([0.0, np.nan]), 8000)


# ---- log-mel -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        FeatureConfig(),  # ASR: HTK mel scale, no area norm, power 2
        FeatureConfig.tts(),  # TTS: slaney scale and norm, magnitude, 0-8 kHz
        FeatureConfig(n_fft=512, win_length=400, f_min=20.0, f_max=7600.0, n_mels=40),
    ],
    ids=["asr", "tts", "win<nfft"],
)
def test_log_mel_matches_librosa(config):
    rng = np.random.default_rng(0)
    wave = rng.uniform(-0.5, 0.5, config.sample_rate // 2).astype(np.float32)
    ours = LogMel(config)(torch.from_numpy(wave)).numpy()  # (T, M)
    mel = librosa.feature.melspectrogram(
        y=wave, sr=config.sample_rate, n_fft=config.n_fft, hop_length=config.hop_length,
        win_length=config.win_length, window="hann", center=True, pad_mode="reflect",
        power=config.power, n_mels=config.n_mels, fmin=config.f_min, fmax=config.max_frequency,
        htk=config.mel_scale == "htk", norm=config.norm,
    )  # fmt: skip
    reference = np.log(np.maximum(mel, config.log_floor)).T
    assert ours.shape == reference.shape
    assert np.abs(ours - reference).max() < 1e-3


def test_log_mel_batch_shape_and_num_frames():
    config = FeatureConfig()
    log_mel = LogMel(config)
    for samples in (201, 16000, 16001, 16159):
        out = log_mel(torch.zeros(3, samples))
        assert out.shape == (3, log_mel.num_frames(samples), 80)
    assert log_mel(torch.zeros(16000)).shape == (101, 80)
    # Silence sits at the log floor exactly.
    assert torch.allclose(
        log_mel(torch.zeros(800)), torch.tensor(np.log(1e-5), dtype=torch.float32)
    )
    with pytest.raises(
        ValueError, match="160 samples is too short for n_fft=400; need at least 201"
    ):
        log_mel(torch.zeros(160))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"win_length": 512}, "win_length=512 exceeds n_fft=400"),
        ({"f_max": 9000.0}, "f_max \\(9000.0\\)"),
        ({"hop_length": 0}, "hop_length=0"),
        ({"mel_scale": "mel"}, "'mel'"),
    ],
)
def test_feature_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FeatureConfig(**kwargs)


# ---- CMVN ----------------------------------------------------------------------------------


def test_cmvn_normalizes_and_matches_numpy(tmp_path):
    gen = torch.Generator().manual_seed(0)
    features = [
        torch.randn(length, 4, generator=gen) * torch.tensor([1.0, 3.0, 0.1, 10.0]) + 5.0
        for length in (7, 50, 1, 33)
    ]
    mean, std = compute_cmvn(iter(features))
    everything = torch.cat(features).double().numpy()
    np.testing.assert_allclose(mean.numpy(), everything.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(std.numpy(), everything.std(axis=0), rtol=1e-6)

    cmvn = GlobalCMVN(mean, std)
    normalized = cmvn(torch.cat(features))
    assert normalized.mean(dim=0).abs().max() < 1e-5
    assert (normalized.std(dim=0, unbiased=False) - 1).abs().max() < 1e-5
    assert torch.allclose(cmvn.inverse(normalized), torch.cat(features), atol=1e-4)

    loaded = GlobalCMVN.load(cmvn.save(tmp_path / "cmvn.json"))
    assert torch.equal(loaded.mean, cmvn.mean) and torch.equal(loaded.std, cmvn.std)
    assert set(loaded.state_dict()) == {"mean", "std"}


def test_cmvn_constant_bin_and_errors(tmp_path):
    mean, std = compute_cmvn([torch.ones(5, 2)])
    assert mean.tolist() == [1.0, 1.0] and std.tolist() == pytest.approx([1e-5, 1e-5])
    with pytest.raises(ValueError, match="no features"):
        compute_cmvn([])
    with pytest.raises(ValueError, match="item 1 has 3 bins"):
        compute_cmvn([torch.zeros(2, 2), torch.zeros(2, 3)])
    (tmp_path / "vocab.json").write_text('{"format": "speechattn-vocab"}')
    with pytest.raises(ValueError, match="vocab.json: not CMVN stats"):
        GlobalCMVN.load(tmp_path / "vocab.json")
