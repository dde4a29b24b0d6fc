"""What a model's outputs mean: attributions, motifs, Markov chains, metrics, baselines to compare
with, variant effects through a task head, and plots."""
