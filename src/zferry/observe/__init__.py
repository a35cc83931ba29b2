"""zferry.observe."""
