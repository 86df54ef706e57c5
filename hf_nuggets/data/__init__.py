"""Loading instruction data and formatting it into prompts; the shipped sample and task set (JSONL)."""
