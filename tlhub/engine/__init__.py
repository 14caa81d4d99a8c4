"""The training engine: configuration, strategies (the stages of transfer learning), the training
loop, checkpoints, the feature cache, held-out evaluation, metrics and plots."""
