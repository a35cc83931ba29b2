"""zferry.plan."""
