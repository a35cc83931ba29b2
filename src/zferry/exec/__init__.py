"""zferry.exec."""
