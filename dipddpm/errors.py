"""The project's error type for mistakes a user can fix (bad config, unknown image)."""


class ConfigError(ValueError):
    """A one-line, user-facing message: what, where, what was expected.

    The CLIs turn it into exit code 2 with no traceback.
    """
