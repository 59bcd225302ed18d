"""Trust: keys, signatures, trust roots, commits, verification and policy."""
