"""Training with Lightning: the Trainer and run folders (trainer), options (options), the optimiser and
its schedule (optim), throughput timing (throughput)."""
