"""One trainer and its pieces: configs, data, losses, adapting to a camera."""
