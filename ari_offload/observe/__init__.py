"""What a call leaves behind: the call log into the store, and the metrics."""
