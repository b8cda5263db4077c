"""The `shipyard` command line."""
