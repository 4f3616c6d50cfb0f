"""newsdesk: turn the feeds a curator follows into a finished email digest."""

__version__ = "0.1.0"
