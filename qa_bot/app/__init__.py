"""The front ends: the command line, the browser chat, the HTTP service, and what they print or export."""
