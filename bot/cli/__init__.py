"""The `ykien` command line, one module per command group."""
