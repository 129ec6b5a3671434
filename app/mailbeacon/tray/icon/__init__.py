"""The tray icon, its menu and the pause of notifications."""
