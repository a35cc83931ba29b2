"""zferry.cli."""
