"""The Scheduled window: email waiting to be sent later (issue 17)."""
