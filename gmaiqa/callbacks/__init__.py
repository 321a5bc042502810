"""Lightning callbacks and logging helpers."""
