"""zferry: keep ZFS datasets replicated between hosts, and manage the snapshots around it."""

__version__ = "0.1.0"
