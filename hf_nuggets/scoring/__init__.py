"""Scoring with the prospector: the model, the engine that computes one-shot scores, and `GoldenScorer`."""
