"""Training on the nuggets: `filter_for_training` and the `GoldenFilterCallback` of the Trainer."""
