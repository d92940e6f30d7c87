"""rtcolor: real-time colorization of gray video, cameras and images."""

__version__ = "0.2.0"
