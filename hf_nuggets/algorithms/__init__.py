"""Classic algorithms that hf-nuggets implements itself: affinity propagation, LSH, k-center, sketches."""
