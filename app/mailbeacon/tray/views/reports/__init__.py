"""Reports: the window and its bar chart."""
