"""Differences between two prolly trees, skipping the subtrees they share.

Both trees are walked left to right as streams of subtrees and entries. When
both streams begin with the same subtree (equal CIDs) it is passed over
unread; otherwise the taller subtree is opened first, so that the two sides
are opened level by level and shared nodes line up again after a change.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import NamedTuple

from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID
from ipfsbin.index._node import Node
from ipfsbin.index.prolly import ProllyTree

__all__ = ["Change", "diff", "same_value"]


class Change(NamedTuple):
    """One key that differs: ``old`` is None when added, ``new`` is None when removed."""

    key: str
    old: dagcbor.Value | None
    new: dagcbor.Value | None


class _Entry(NamedTuple):
    key: str
    value: dagcbor.Value


class _Subtree(NamedTuple):
    """A subtree not read yet: child ``index`` of ``parent`` (or a root when parent is None)."""

    cid: CID
    level: int
    parent: Node | None
    position: int


_Item = _Subtree | _Entry


def _root(tree: ProllyTree, root: CID) -> _Subtree:
    return _Subtree(root, tree.load(root).level, None, 0)


def _open(tree: ProllyTree, item: _Subtree, stack: list[_Item]) -> None:
    """Replace ``item``, the top of ``stack``, by its children or entries, first one on top."""
    stack.pop()
    if item.parent is None:
        node = tree.load(item.cid)
    else:
        node = tree.child(item.parent, item.position)
    if node.level == 0:
        for position in range(len(node.keys) - 1, -1, -1):
            stack.append(_Entry(node.keys[position], node.values[position]))
        return
    for position in range(len(node.keys) - 1, -1, -1):
        stack.append(_Subtree(node.children[position], node.level - 1, node, position))


def same_value(a: dagcbor.Value, b: dagcbor.Value) -> bool:
    """Equal in the data model: Python says 1 == 1.0 == True and 0.0 == -0.0; it does not."""
    if type(a) is not type(b):
        return False
    if type(a) is dict:
        return a.keys() == b.keys() and all(same_value(v, b[k]) for k, v in a.items())
    if type(a) is list or type(a) is tuple:
        return len(a) == len(b) and all(map(same_value, a, b))
    if type(a) is float:
        return struct.pack(">d", a) == struct.pack(">d", b)
    return bool(a == b)


def _height(item: _Item) -> int:
    return item.level if isinstance(item, _Subtree) else -1


def diff(tree: ProllyTree, old_root: CID, new_root: CID) -> Iterator[Change]:
    """Changes from ``old_root`` to ``new_root`` in key order.

    Only the nodes on the paths to changed entries are read: a subtree
    present on both sides at the same position is skipped by its CID
    without reading it.
    """
    if old_root == new_root:
        return
    left: list[_Item] = [_root(tree, old_root)]
    right: list[_Item] = [_root(tree, new_root)]
    while left and right:
        a, b = left[-1], right[-1]
        if isinstance(a, _Subtree) and isinstance(b, _Subtree) and a.cid == b.cid:
            left.pop()
            right.pop()
            continue
        if isinstance(a, _Subtree) or isinstance(b, _Subtree):
            height_a, height_b = _height(a), _height(b)
            if isinstance(a, _Subtree) and height_a >= height_b:
                _open(tree, a, left)
            if isinstance(b, _Subtree) and height_b >= height_a:
                _open(tree, b, right)
            continue
        if a.key < b.key:
            left.pop()
            yield Change(a.key, a.value, None)
        elif b.key < a.key:
            right.pop()
            yield Change(b.key, None, b.value)
        else:
            left.pop()
            right.pop()
            if not same_value(a.value, b.value):
                yield Change(a.key, a.value, b.value)
    for stack, removed in ((left, True), (right, False)):
        while stack:
            item = stack[-1]
            if isinstance(item, _Subtree):
                _open(tree, item, stack)
                continue
            stack.pop()
            yield (
                Change(item.key, item.value, None)
                if removed
                else Change(item.key, None, item.value)
            )
