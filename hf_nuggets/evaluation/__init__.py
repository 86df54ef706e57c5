"""Evaluating models trained on the nuggets: generation, judges and the AlpacaEval win rate."""
