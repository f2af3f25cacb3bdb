"""YAML loading with the YAML 1.2 float rule.

PyYAML follows YAML 1.1, where `1e-4` (no dot) is a string. Researchers write
learning rates that way, so we add a resolver that reads any decimal or
exponent literal as a float, as YAML 1.2 does.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

_FLOAT_12 = re.compile(
    r"""^[-+]?(?:
        (?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?   # 1.  1.5  1.5e3
      | \.[0-9_]+(?:[eE][-+]?[0-9]+)?                   # .5   .5e-3
      | [0-9][0-9_]*[eE][-+]?[0-9]+                      # 1e-4 (a string in YAML 1.1)
      | \.(?:inf|Inf|INF)
      | \.(?:nan|NaN|NAN)
    )$""",
    re.X,
)


class _Loader(yaml.SafeLoader):
    """SafeLoader whose float resolver follows YAML 1.2."""


# Drop 1.1's float resolver, then install ours for every character a float can start with.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:float"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_12, list("-+0123456789."))


def _unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    """A mapping whose keys are distinct: PyYAML would silently keep the last of two equal keys."""
    loader.flatten_mapping(node)
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if isinstance(key, (str, int, float, bool)) and key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        if isinstance(key, (str, int, float, bool)):
            seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def loads(text: str, where: str = "<string>") -> Any:
    """Parse YAML text; a syntax error becomes a one-line ConfigError naming `where`."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"{where}{at}: invalid YAML ({problem})") from None


def load_file(path: str | Path) -> Any:
    """Read and parse a YAML (or JSON, a YAML subset) file."""
    p = Path(path)
    try:
        text = p.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read file ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: expected a UTF-8 text file (YAML or JSON), found byte 0x{exc.object[exc.start]:02x} "
                          f"at offset {exc.start}") from None
    if "\x00" in text:
        raise ConfigError(f"{path}: expected a text file (YAML or JSON), found NUL bytes (a binary file?)")
    return loads(text, where=str(path))
