"""Command-line interface: ``specsim <command> ...`` (see ``specsim --help``)."""


def make_console():
    """A rich console: the terminal's width, or 120 columns when output goes to a file or pipe."""
    import sys

    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 120, markup=False)  # names are data, not markup
