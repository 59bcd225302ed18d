"""The host: facts about this machine read from its tools (compiler, libc, CHOST)."""
