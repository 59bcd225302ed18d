"""ipfsbin: Gentoo binary packages shared over IPFS under signed, threshold-verified indexes."""

__version__ = "0.1.0"
