"""What the neural models share: the training loop (budgets, early stopping, checkpoints) and sequence batching."""
