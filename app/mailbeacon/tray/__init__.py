"""The PySide6 shell over the agent."""
