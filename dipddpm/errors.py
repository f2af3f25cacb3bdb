"""The project's error type for mistakes a user can fix (bad config, unknown image)."""

import reprlib

MAX_MESSAGE = 600  # characters: a message is one line a person reads, whatever value it quotes

_SHOWN = reprlib.Repr()
_SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlist, _SHOWN.maxdict, _SHOWN.maxlevel = 80, 80, 8, 8, 3


def shown(value) -> str:
    """A value as an error message quotes it: repr-like, cut to a bounded size however large it is."""
    return _SHOWN.repr(value)


class ConfigError(ValueError):
    """A one-line, user-facing message: what, where, what was expected.

    The CLIs turn it into exit code 2 with no traceback. The message is kept to one line of at most
    MAX_MESSAGE characters.
    """

    def __init__(self, message: str = ""):
        text = " ".join(str(message).split())
        if len(text) > MAX_MESSAGE:
            text = text[: MAX_MESSAGE - 1] + "…"
        super().__init__(text)
