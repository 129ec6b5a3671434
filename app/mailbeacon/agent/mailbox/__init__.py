"""The rep's mailbox over IMAP: the client, the reply watcher, Sent cleanup, the check."""
