"""``ipfsbin gc``: keep what this host needs, unpin the rest, and run Kubo's repo GC."""

from ipfsbin.gc.collect import GcReport, collect_garbage
from ipfsbin.gc.plan import Kept, choose_within_budget

__all__ = ["GcReport", "Kept", "choose_within_budget", "collect_garbage"]
