"""The host: this machine's facts (compiler, libc, CHOST) and its Portage profile."""
