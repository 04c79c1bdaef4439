"""Application layer: commands, ports and one handler per command, each in one unit of work."""
