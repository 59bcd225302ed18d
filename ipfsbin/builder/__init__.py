"""Builders: publish binpkgs with their descriptors, manifests and attestations."""
