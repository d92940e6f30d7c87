"""Where frames come from and where they go: image files now; video sources and sinks."""
