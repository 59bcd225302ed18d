"""KeyScope: which keys and key ranges a partial replica keeps."""

from __future__ import annotations

import pytest

from ipfsbin.index.scope import EVERYTHING, KeyScope


def test_everything_holds_and_covers_any_range() -> None:
    assert EVERYTHING.everything
    assert EVERYTHING.holds("zz/x")
    assert EVERYTHING.touches(None, "a") and EVERYTHING.covers(None, "a")


def test_platform_scope_holds_only_its_platforms() -> None:
    scope = KeyScope.of_platforms(["bbb", "ddd"])
    assert scope.holds("bbb/app-misc/foo/1/d") and scope.holds("ddd/x")
    assert not scope.holds("bb/x") and not scope.holds("bbbb/x") and not scope.holds("ccc/x")


@pytest.mark.parametrize(
    ("after", "upto", "touches", "covers"),
    [
        (None, "aaa/z", False, False),  # wholly before bbb/
        (None, "bbb/a", True, False),  # reaches into bbb/ from the start
        ("aaa/z", "bbb/a", True, False),  # straddles the start of bbb/
        ("bbb/a", "bbb/q", True, True),  # inside bbb/
        ("bbb/q", "ccc/a", True, False),  # straddles the end of bbb/
        ("bbb0", "ccc/z", False, False),  # between bbb/ and ddd/
        ("ccc/z", "zzz/a", True, False),  # spans all of ddd/
        ("ddd/z", "zzz/a", True, False),  # ddd/ keys after ddd/z may exist
        ("ddd0", "zzz/a", False, False),
    ],
)
def test_ranges(after: str | None, upto: str, touches: bool, covers: bool) -> None:
    scope = KeyScope.of_platforms(["bbb", "ddd"])
    assert scope.touches(after, upto) is touches
    assert scope.covers(after, upto) is covers


def test_prefixes_are_normalised_and_checked() -> None:
    assert KeyScope(prefixes=("b/", "a/", "b/c", "a/")).prefixes == ("a/", "b/")
    with pytest.raises(ValueError, match="single key segments"):
        KeyScope.of_platforms(["a/b"])
    with pytest.raises(ValueError, match="must not be empty"):
        KeyScope(prefixes=("",))
