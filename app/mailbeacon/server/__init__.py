"""The tracking server: pixel, click redirect, browser claim, event stream."""
