"""One pin-name scheme for every pin ipfsbin makes."""

from __future__ import annotations

import pytest

from ipfsbin.kubo.pins import is_ipfsbin_pin, pin_name
from ipfsbin.subscribe import PIN_NAME


def test_names_are_prefix_role_and_subject() -> None:
    assert pin_name("follow") == PIN_NAME == "ipfsbin:follow"
    assert pin_name("index", "default", "head") == "ipfsbin:index:default:head"
    assert pin_name("publish", "manifest", "dev-libs/foo-1.0") == (
        "ipfsbin:publish:manifest:dev-libs/foo-1.0"
    )


@pytest.mark.parametrize("subject", [("",), ("a:b",), (" head",)])
def test_a_part_that_would_blur_the_name_is_refused(subject: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="pin name parts"):
        pin_name("index", *subject)


def test_unknown_roles_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown pin role"):
        pin_name("gc")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "ours"),
    [
        ("ipfsbin:index:default:head", True),
        ("ipfsbin-follow", True),  # before the scheme
        ("ipfsbin-follow:k51abc", True),
        ("ipfsbin index default head", True),
        ("ipfsbin manifest dev-libs/foo-1", True),
        ("ipfsbinx", False),
        ("", False),
        ("somebody else's pin", False),
    ],
)
def test_pins_of_earlier_versions_are_recognised(name: str, ours: bool) -> None:
    assert is_ipfsbin_pin(name) is ours
