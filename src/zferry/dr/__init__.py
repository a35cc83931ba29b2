"""Multi-site disaster recovery: `zferry-dr` (failover, failback, fencing, divergence)."""
