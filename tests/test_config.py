"""Tests for speechattn/config.py: defaults -> YAML -> key=value, strict keys and types."""

from dataclasses import dataclass, field

import pytest

from speechattn.config import config_to_dict, load_config, resolve_config, save_config


@dataclass
class Inner:
    size: int = 4
    name: str = "a"
    window: int | None = None


@dataclass
class Outer:
    lr: float = 1e-3
    steps: int = 10
    flag: bool = False
    dims: tuple[int, ...] = (1, 2)
    inner: Inner = field(default_factory=lambda: Inner(size=7))


def test_defaults_then_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lr: 0.5\nsteps: 3\ninner:\n  name: b\n")
    config = resolve_config(Outer, path, ["steps=20", "inner.window=3", "dims=[4,5]"])
    assert config == Outer(lr=0.5, steps=20, dims=(4, 5), inner=Inner(size=7, name="b", window=3))


def test_partial_nested_section_keeps_parent_defaults():
    assert resolve_config(Outer, overrides=["inner.name=z"]).inner == Inner(size=7, name="z")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("stepz=3", "unknown config key.*'stepz'"),
        ("steps=1.5", "'steps': expected an integer, got 1.5"),
        ("flag=3", "'flag': expected true/false"),
        ("inner.size=x", "'inner.size': expected an integer"),
        ("inner.nope=1", "'inner.nope'"),
        ("noequals", "key=value"),
    ],
)
def test_unknown_keys_and_wrong_types_are_errors(override, message):
    with pytest.raises(ValueError, match=message):
        resolve_config(Outer, overrides=[override])


def test_int_is_accepted_for_float_and_save_load_round_trip(tmp_path):
    config = resolve_config(Outer, overrides=["lr=1", "inner.window=null"])
    assert config.lr == 1.0 and isinstance(config.lr, float)
    path = save_config(config, tmp_path / "exp" / "config.yaml")
    assert load_config(Outer, path) == config


def test_missing_file_and_non_mapping_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        resolve_config(Outer, tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="bad.yaml"):
        resolve_config(Outer, bad)


def test_configs_saved_with_the_retired_derived_sizes_still_load(tmp_path):
    """Experiments saved before the encoder and decoder widths became constructor arguments hold
    ``encoder.input_dim`` and ``decoder.input_dim/memory_dim``: read and dropped; any other
    unknown key is still an error."""
    from speechattn.asr.recipe import ASRRecipeConfig

    old = tmp_path / "config.yaml"
    old.write_text("model:\n  encoder: {input_dim: 80, hidden_dim: 32}\n"
                   "  decoder: {input_dim: 64, memory_dim: 256, hidden_dim: 48}\n")
    config = load_config(ASRRecipeConfig, old)
    assert config.model.encoder.hidden_dim == 32 and config.model.decoder.hidden_dim == 48
    assert "input_dim" not in config_to_dict(config)["model"]["encoder"]
    old.write_text("model:\n  encoder: {input_dims: 80}\n")
    with pytest.raises(ValueError, match=r"unknown config key\(s\) \['model.encoder.input_dims'\]"):
        load_config(ASRRecipeConfig, old)


def test_an_old_key_name_is_read_as_the_new_one(tmp_path):
    from speechattn.asr.recipe import ASRRecipeConfig

    old = tmp_path / "config.yaml"
    old.write_text("model: {embed_dim: 24}\n")  # ASR's name for TTS's embedding_dim, until now
    assert load_config(ASRRecipeConfig, old).model.embedding_dim == 24
    assert resolve_config(ASRRecipeConfig, old, ["model.embed_dim=8"]).model.embedding_dim == 8
    with pytest.raises(ValueError, match="'model.embed_dim' and 'model.embedding_dim' are one"):
        resolve_config(ASRRecipeConfig, old, ["model.embedding_dim=8"])


@dataclass
class _BiLSTMLike:
    kind: str = "bilstm"
    hidden_dim: int = 8


@dataclass
class _ConformerLike:
    kind: str = "conformer"
    heads: int = 4


@dataclass
class _WithKinds:
    encoder: _BiLSTMLike | _ConformerLike = field(default_factory=_BiLSTMLike)


def test_a_union_field_takes_the_config_type_its_kind_names(tmp_path):
    """Each kind of a registry may have its own sub-config: ``kind`` picks the dataclass."""
    assert resolve_config(_WithKinds, overrides=["encoder.hidden_dim=16"]).encoder == _BiLSTMLike(hidden_dim=16)
    other = resolve_config(_WithKinds, overrides=["encoder.kind=conformer", "encoder.heads=2"])
    assert other.encoder == _ConformerLike(heads=2)  # its own defaults, none of bilstm's fields
    path = save_config(other, tmp_path / "config.yaml")
    assert load_config(_WithKinds, path) == other  # round trip through YAML
    with pytest.raises(ValueError, match=r"'encoder.kind': 'rnn' is not one of \['bilstm', 'conformer'\]"):
        resolve_config(_WithKinds, overrides=["encoder.kind=rnn"])
    with pytest.raises(ValueError, match=r"unknown config key\(s\) \['encoder.heads'\]"):
        resolve_config(_WithKinds, overrides=["encoder.heads=2"])  # bilstm has no heads
