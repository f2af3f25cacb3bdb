"""The registry of methods: a method by its name, and what every caller asks of one.

See `dipddpm.method` for the interface. Adding a method is its module plus one line here.
"""

from __future__ import annotations

from functools import lru_cache

from .method import Method


@lru_cache(maxsize=1)
def _registry() -> dict[str, Method]:
    from . import hybrid, staged

    return {m.name: m for m in (staged.METHOD, hybrid.METHOD)}


def names() -> tuple[str, ...]:
    return tuple(_registry())


def get(name: str) -> Method:
    """The method called `name`, or a one-line ConfigError listing the choices."""
    from .errors import ConfigError

    found = _registry().get(name)
    if found is None:
        raise ConfigError(f"method: expected one of {' | '.join(names())}, got {name!r}")
    return found


def check_metric_name(name: str, method: str, where: str) -> str:
    """`name` if the method reports it, else a one-line ConfigError listing the choices."""
    from .errors import ConfigError

    reported = get(method).metric_names
    if name not in reported:
        raise ConfigError(f"{where}: expected a metric the {method} method reports ({', '.join(reported)}), "
                          f"got {name!r}")
    return name


def tags_of(config: dict) -> tuple[str, ...]:
    """ORACLE / FLOOR of a trial's config dict (its method says which)."""
    return get(config.get("method")).tags(config)
