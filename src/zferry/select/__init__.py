"""zferry.select."""
