"""Following published indexes: subscriptions, the sync engine, and the gateway fetcher."""

from ipfsbin.subscribe.state import (
    AcceptedHead,
    Subscription,
    SubscriptionStore,
    default_state_path,
)
from ipfsbin.subscribe.sync import (
    Keeper,
    KuboKeeper,
    KuboRecordSource,
    RecordSource,
    SyncResult,
    follow_forever,
    sync_all,
    sync_subscription,
    unsubscribe,
)

__all__ = [
    "AcceptedHead",
    "Keeper",
    "KuboKeeper",
    "KuboRecordSource",
    "RecordSource",
    "Subscription",
    "SubscriptionStore",
    "SyncResult",
    "default_state_path",
    "follow_forever",
    "sync_all",
    "sync_subscription",
    "unsubscribe",
]
