"""The command line: one module per command, their shared options, and the exit rule."""
