"""Focus-stack data: reading, the dataset contract, splits, synthetic stacks and the DataModule."""
