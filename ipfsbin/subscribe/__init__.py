"""Following published indexes: the :class:`Follower`, its state, and the sync engine under it."""

from ipfsbin.subscribe._held import unsubscribe
from ipfsbin.subscribe._replicas import REPLICA_POLICIES, ReplicaPolicy
from ipfsbin.subscribe.follower import (
    FollowConfig,
    Follower,
    Unsubscribed,
    follow_forever,
    require_subscriptions,
)
from ipfsbin.subscribe.keepers import PIN_NAME, BlockFileKeeper, GatewayKeeper, Keeper, KuboKeeper
from ipfsbin.subscribe.sources import GatewayRecordSource, KuboRecordSource, RecordSource
from ipfsbin.subscribe.state import (
    AcceptedHead,
    Subscription,
    SubscriptionStore,
    default_state_path,
)
from ipfsbin.subscribe.sync import (
    SyncOutcome,
    SyncResult,
    describe_error,
    sync_all,
    sync_subscription,
)

__all__ = [
    "PIN_NAME",
    "REPLICA_POLICIES",
    "AcceptedHead",
    "BlockFileKeeper",
    "FollowConfig",
    "Follower",
    "GatewayKeeper",
    "GatewayRecordSource",
    "Keeper",
    "KuboKeeper",
    "KuboRecordSource",
    "RecordSource",
    "ReplicaPolicy",
    "Subscription",
    "SubscriptionStore",
    "SyncOutcome",
    "SyncResult",
    "Unsubscribed",
    "default_state_path",
    "describe_error",
    "follow_forever",
    "require_subscriptions",
    "sync_all",
    "sync_subscription",
    "unsubscribe",
]
