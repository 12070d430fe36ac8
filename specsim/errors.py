"""User-facing errors.

Every problem caused by the user's input (a bad argument, a missing model, a malformed file)
is raised as :class:`SpecsimError`; the CLI prints its message on one line and exits with
:data:`USER_ERROR_EXIT_CODE`, without a traceback.
"""

USER_ERROR_EXIT_CODE = 2


class SpecsimError(Exception):
    """An error in the user's input, reported as one line (``specsim: <message>``)."""
