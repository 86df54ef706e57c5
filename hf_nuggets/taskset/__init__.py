"""Building the task set: gates, quality, diversity (refine_task_set, auto_task_set)."""
