"""Training: one trainer (adapt is a configuration of it), its configs, data, losses, calibration, averaging."""
