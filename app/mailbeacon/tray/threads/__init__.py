"""Keeping the UI thread free: the agent-to-UI bridge, worker threads, the collector."""
