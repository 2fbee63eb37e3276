"""MLflow tracking: the metrics callback, its background writer, runs and sweep parents."""
