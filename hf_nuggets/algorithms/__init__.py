"""Classic algorithms that hf-nuggets implements itself: affinity propagation, LSH, k-center, sketches, and the
redundancy walk of a diverse top."""
