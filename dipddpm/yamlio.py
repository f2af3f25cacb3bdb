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


MAX_VALUES = 100_000  # values a document may expand to through its aliases (a sweep has a few hundred)


def expanded_size(node: yaml.Node, memo: dict | None = None) -> int:
    """How many values the node stands for once every alias is expanded, counted on the node graph
    (each node once), so a "billion laughs" document is measured without being expanded."""
    memo = {} if memo is None else memo
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = 1  # a node reached again while counting it (a cycle) counts once
    if isinstance(node, yaml.SequenceNode):
        total = 1 + sum(expanded_size(n, memo) for n in node.value)
    elif isinstance(node, yaml.MappingNode):
        total = 1 + sum(expanded_size(k, memo) + expanded_size(v, memo) for k, v in node.value)
    else:
        total = 1
    memo[id(node)] = total
    return total


def loads(text: str, where: str = "<string>") -> Any:
    """Parse YAML text; a syntax error, or aliases that expand past MAX_VALUES, becomes a one-line
    ConfigError naming `where` — before anything reads (or prints) a value."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = expanded_size(node)
        if size > MAX_VALUES:
            raise ConfigError(f"{where}: expected at most {MAX_VALUES} values, got aliases that expand to {size} "
                              "(an alias bomb?); write the values out")
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"{where}{at}: invalid YAML ({problem})") from None
    finally:
        loader.dispose()


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
