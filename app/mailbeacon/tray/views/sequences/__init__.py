"""The Sequences window: steps, who is at which step, next sends, per-step results."""
