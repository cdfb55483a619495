"""InterDyn training: datasets, data preparation, training loops, export and evaluation."""
