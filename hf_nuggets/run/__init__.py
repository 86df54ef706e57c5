"""Prospecting runs: the loop with its hooks, in memory or in checkpointed shards, and what a run writes."""
