"""User-facing errors.

Every problem caused by the user's input (a bad argument, a missing model, a malformed file)
is raised as :class:`SpecsimError`; the CLI prints its message on one line and exits with
:data:`USER_ERROR_EXIT_CODE`, without a traceback.
"""

USER_ERROR_EXIT_CODE = 2


MAX_MESSAGE = 1000  #: characters of one error message; longer ones are cut


class SpecsimError(Exception):
    """An error in the user's input, reported as one line (``specsim: <message>``).

    The message is made one line here, whatever it quotes: control characters (a newline inside a YAML
    key, say) are escaped and a message longer than :data:`MAX_MESSAGE` characters is cut.
    """

    def __init__(self, message: object = "") -> None:
        text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(message))
        super().__init__(text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 5] + " ...")


def shown(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters: an error message never prints an unbounded value
    (a huge YAML document, a megabyte string)."""
    try:
        text = repr(value)
    except (RecursionError, ValueError):  # nested too deep; an integer of more than 4,300 digits
        text = f"<{type(value).__name__} too large to show>"
    return text if len(text) <= limit else text[: limit - 5] + " ...>"


def cut(text: str, limit: int = 120) -> str:
    """``text`` cut to ``limit`` characters (for text already meant to be read, not quoted)."""
    return text if len(text) <= limit else text[: limit - 4] + " ..."
