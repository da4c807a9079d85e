"""Typed configs resolved one way: dataclass defaults, then a YAML file, then ``key=value`` overrides.

Every component has its own small dataclass (``EncoderConfig``, ``AttentionConfig``, ...); a recipe
composes them into one dataclass. Nested fields are addressed with dots on the command line
(``encoder.hidden_dim=256``). Unknown keys and values of the wrong type raise ``ValueError`` naming
the key, the value and what was expected. So that experiment folders saved before still load, a
dataclass may list ``RETIRED_KEYS`` (keys older configs hold, such as sizes that are now derived:
read and dropped) and ``RENAMED_KEYS`` (``{old: new}``: an old name is read as the new one, which
may be dotted into a sub-section). A field typed as a union of config dataclasses that each have
a ``kind`` field takes the one whose ``kind`` the YAML or an override names, so that each kind of
a registry can have its own sub-config.

>>> from speechattn.nn.decoder import DecoderConfig
>>> config = resolve_config(DecoderConfig, overrides=["hidden_dim=8", "attention.kind=dot"])
>>> config.hidden_dim, config.attention.kind, config.attention.attention_dim
(8, 'dot', 128)
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from speechattn.fileio import write_text_atomic

__all__ = [
    "resolve_config", "config_from_dict", "config_to_dict", "save_config", "load_config",
    "read_yaml_mapping", "parse_override", "merge_override",
]

C = TypeVar("C")


def _check_value(key: str, value: Any, annotation: Any) -> Any:
    """Return ``value`` converted to ``annotation`` or raise ``ValueError`` naming ``key``."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        chosen = _kind_class(key, annotation, value)
        if chosen is not None:
            return config_from_dict(chosen, value, prefix=f"{key}.")
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _check_value(key, value, option)
            except ValueError as error:
                errors.append(str(error))
        raise ValueError(f"config key {key!r}: {value!r} matches none of {annotation}")
    if origin is typing.Literal:
        if value not in args:
            raise ValueError(f"config key {key!r}: {value!r} is not one of {list(args)}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ValueError(f"config key {key!r}: expected a list, got {value!r}")
        item_type = args[0] if args else Any
        items = [_check_value(f"{key}[{i}]", v, item_type) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"config key {key!r}: expected a mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
        if not isinstance(value, dict):
            raise ValueError(f"config key {key!r}: expected a mapping of {annotation.__name__} fields")
        return config_from_dict(annotation, value, prefix=f"{key}.")
    if annotation is bool:
        if not isinstance(value, bool):
            raise ValueError(f"config key {key!r}: expected true/false, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"config key {key!r}: expected a number, got {value!r}")
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"config key {key!r}: expected an integer, got {value!r}")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise ValueError(f"config key {key!r}: expected a string, got {value!r}")
        return value
    if annotation is type(None):
        if value is not None:
            raise ValueError(f"config key {key!r}: expected null, got {value!r}")
        return None
    raise ValueError(f"config key {key!r}: unsupported field type {annotation}")


def config_from_dict(cls: type[C], values: dict[str, Any], prefix: str = "") -> C:
    """Build ``cls`` from ``values`` on top of its defaults; unknown keys raise ``ValueError``."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    values = _current_names(cls, values, prefix)
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(
            f"unknown config key(s) {[prefix + k for k in unknown]}; "
            f"valid keys here: {[prefix + k for k in fields]}"
        )
    kwargs = {}
    for name, value in values.items():
        default = _default_of(fields[name])
        if dataclasses.is_dataclass(default) and isinstance(value, dict):
            # A nested section given partially keeps the parent's defaults for the rest, unless
            # it names another kind: then that kind's own defaults fill it.
            target = _kind_class(prefix + name, hints[name], value) or type(default)
            value = _current_names(target, value, f"{prefix}{name}.")
            if target is type(default):
                value = _deep_update(config_to_dict(default), value)
        kwargs[name] = _check_value(prefix + name, value, hints[name])
    return cls(**kwargs)


def _kind_class(key: str, annotation: Any, value: Any) -> type | None:
    """For a field typed as a union of config dataclasses that each have a ``kind`` (say
    ``encoder: BiLSTMConfig | ConformerConfig``), the one whose default ``kind`` the mapping
    ``value`` names; None when the field is no such union or ``value`` names no kind."""
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return None
    options = [a for a in typing.get_args(annotation) if dataclasses.is_dataclass(a)]
    kinds = {}
    for option in options:
        field = {f.name: f for f in dataclasses.fields(option)}.get("kind")
        if field is not None and isinstance(field.default, str):
            kinds[field.default] = option
    if not kinds or not isinstance(value, dict) or "kind" not in value:
        return None
    if value["kind"] not in kinds:
        raise ValueError(f"config key {key + '.kind'!r}: {value['kind']!r} is not one of {sorted(kinds)}")
    return kinds[value["kind"]]


def _current_names(cls: type, values: dict[str, Any], prefix: str) -> dict[str, Any]:
    """``values`` without ``cls.RETIRED_KEYS`` and with ``cls.RENAMED_KEYS`` under their new names."""
    fields = {f.name for f in dataclasses.fields(cls)}
    retired = set(getattr(cls, "RETIRED_KEYS", ())) - fields
    values = {k: v for k, v in values.items() if k not in retired}
    for old, new in getattr(cls, "RENAMED_KEYS", {}).items():
        if old not in values:
            continue
        *sections, key = new.split(".")  # a new name may sit in a sub-section: "feedback.start"
        target = values
        for section in sections:
            target = target.setdefault(section, {})
            if not isinstance(target, dict):
                raise ValueError(f"config key {prefix + section!r}: expected a mapping")
        if key in target:
            raise ValueError(f"config keys {prefix + old!r} and {prefix + new!r} are one "
                             f"setting ({old!r} is its old name); give only {prefix + new!r}")
        target[key] = values.pop(old)
    return values


def _default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _deep_update(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_update(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ValueError(f"override {item!r} is not of the form key=value")
    key, raw = item.split("=", 1)
    if not key:
        raise ValueError(f"override {item!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as error:
        raise ValueError(f"override {item!r}: the value is not valid YAML ({_yaml_problem(error)})") from None
    return key.strip().split("."), value


def _yaml_problem(error: yaml.YAMLError) -> str:
    """The parser's complaint with its 1-based line and column, in one line."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}"


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML file; a missing file, unreadable text or a parse error is one
    ``ValueError``/``FileNotFoundError`` naming the file (and the line and column)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: config file not found")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text (byte {error.start})") from None
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML ({_yaml_problem(error)})") from None
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: a config file must hold a mapping, got {type(loaded).__name__}")
    return loaded


def merge_override(base: dict[str, Any], path: list[str], value: Any) -> None:
    node = base
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ValueError(f"override {'.'.join(path)}: {part!r} is not a section")
        node = child
    node[path[-1]] = value


def config_to_dict(config: Any) -> dict[str, Any]:
    """The config as plain YAML-safe data (tuples become lists)."""

    def plain(value: Any) -> Any:
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(config))


def resolve_config(
    cls: type[C], yaml_path: str | Path | None = None, overrides: list[str] | None = None
) -> C:
    """Defaults of ``cls``, updated by the YAML file, then by ``key=value`` overrides.

    An error says where the bad value came from: the YAML file, or the command-line overrides.
    """
    values: dict[str, Any] = {}
    if yaml_path is not None:
        values = read_yaml_mapping(yaml_path)
        try:
            config_from_dict(cls, copy.deepcopy(values))
        except ValueError as error:
            raise ValueError(f"{error} (from {yaml_path})") from None
    for item in overrides or []:
        key_path, value = parse_override(item)
        merge_override(values, key_path, value)
    try:
        return config_from_dict(cls, values)
    except ValueError as error:
        raise ValueError(f"{error} (from the command-line overrides)" if overrides else str(error)) from None


def save_config(config: Any, path: str | Path) -> Path:
    """Write the resolved config as YAML (atomically)."""
    return write_text_atomic(path, yaml.safe_dump(config_to_dict(config), sort_keys=False))


def load_config(cls: type[C], path: str | Path) -> C:
    """Read a config saved by :func:`save_config`."""
    return resolve_config(cls, path)
