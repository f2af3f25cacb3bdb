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


def loads(text: str, where: str = "<string>") -> Any:
    """Parse YAML text; a syntax error becomes a one-line ConfigError naming `where`."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}{at}: invalid YAML ({problem})") from None


def load_file(path: str | Path) -> Any:
    """Read and parse a YAML (or JSON, a YAML subset) file."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read file ({exc.strerror})") from None
    return loads(text, where=str(path))
