"""The activity feed: its lazy table model and window."""
