"""The network, its VGG16 backbones read from files, and self-describing checkpoints."""
