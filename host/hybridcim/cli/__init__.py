"""The ``hybridcim`` command line: one module per subcommand (``cmd_*.py``), registered in main."""
