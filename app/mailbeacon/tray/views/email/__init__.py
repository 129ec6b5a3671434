"""One sent email's own view: recipients, timeline, logged copy, follow-up actions."""
