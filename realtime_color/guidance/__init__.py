"""What the user knows: reference pictures and colored frames."""
