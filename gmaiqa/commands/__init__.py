"""Command bodies: each takes the composed Hydra config and returns an exit status."""
