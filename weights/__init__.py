"""Data package: registry.toml, the known checkpoints (read by layerctl.weights)."""
