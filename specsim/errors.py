"""User-facing errors.

Every problem caused by the user's input (a bad argument, a missing model, a malformed file)
is raised as :class:`SpecsimError`; the CLI prints its message on one line and exits with
:data:`USER_ERROR_EXIT_CODE`, without a traceback.
"""

USER_ERROR_EXIT_CODE = 2


class SpecsimError(Exception):
    """An error in the user's input, reported as one line (``specsim: <message>``)."""


def shown(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters: an error message never prints an unbounded value
    (a huge YAML document, a megabyte string)."""
    try:
        text = repr(value)
    except RecursionError:
        text = f"<{type(value).__name__} nested too deep to show>"
    return text if len(text) <= limit else text[: limit - 5] + " ...>"
