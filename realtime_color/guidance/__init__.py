"""What the user knows: reference pictures, colored frames and color hints."""
