"""Measuring: metrics, eval, bench and the peers compared against."""
