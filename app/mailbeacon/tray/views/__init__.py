"""The app's windows and dialogs (they show what the agent decided; no rules here)."""
