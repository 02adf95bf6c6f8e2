"""The thin click CLI: parse options, call one library function, print, map errors to exit codes."""
