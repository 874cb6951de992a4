"""Tasks of the example project, and its ``demo`` command."""
