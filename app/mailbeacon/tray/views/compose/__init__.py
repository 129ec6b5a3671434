"""The compose window and its templates."""
