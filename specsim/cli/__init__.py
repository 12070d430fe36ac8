"""Command-line interface: ``specsim <command> ...`` (see ``specsim --help``)."""
