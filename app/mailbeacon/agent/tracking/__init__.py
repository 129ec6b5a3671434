"""The agent's link to the tracking server: the event stream subscriber."""
