"""zferry.lifecycle."""
