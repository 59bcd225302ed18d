"""pytest fixtures around the builder playground.

Use in a test module (or once in a ``conftest.py`` as
``pytest_plugins = ["tests.playground.fixtures"]``)::

    from tests.playground.fixtures import builder_playground  # noqa: F401

    @pytest.mark.integration
    @pytest.mark.slow
    def test_something(builder_playground):
        path = builder_playground.binpkgs["app-misc/hello-1"]   # a real .gpkg.tar
        builder_playground.pkgdir                              # PKGDIR with Packages
        builder_playground.emerge("--buildpkg", "app-misc/usetest")  # run emerge again
        env = builder_playground.env({"PORTAGE_BINHOST": url})  # env for your own emerge
        cmd = builder_playground.command("--getbinpkgonly", "app-misc/hello")

The playground is built once per test process (about 15-20 s on two cores:
one ``emerge --buildpkg`` for six packages of ``tests.playground.ebuilds``,
one for the XPAK package) however many modules import the fixture, and
removed when the session ends. ``binpkgs`` maps CPV to path:

* ``app-misc/usetest-1``  USE ``bar baz foo`` of IUSE ``+foo bar baz -qux``
* ``dev-libs/libfoo-1``   SLOT 0/1, no ELF file
* ``app-misc/usesfoo-1``  RDEPEND ``dev-libs/libfoo:0/1=``
* ``app-misc/hello-1``    gcc-built ELF with ``.comment``, RESTRICT=bindist
* ``app-misc/stripped-1`` gcc-built ELF, stripped by Portage (no ``.comment``
  when ``scanelf`` from pax-utils is installed; Portage skips stripping otherwise)
* ``app-misc/legacy-1``   XPAK (``.xpak``) with a gcc-built ELF

Tests must not change what is in PKGDIR for other tests: emerge into a
different PKGDIR (``env={"PKGDIR": ...}``) to build more. Host programs
needed: GNU tar, zstd, bzip2, flock, gcc (the fixture skips without them);
pax-utils (scanelf) for stripping and PROVIDES/REQUIRES.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.playground.builder import BuilderPlayground
from tests.playground.portage_env import missing_host_tools

__all__ = ["builder_playground"]

_BUILT: list[BuilderPlayground] = []


@pytest.fixture(scope="session")
def builder_playground(request: pytest.FixtureRequest) -> Iterator[BuilderPlayground]:
    """A builder host whose PKGDIR holds the real binpkgs of the test repository."""
    missing = missing_host_tools()
    if missing:
        pytest.skip(f"the builder playground needs {', '.join(missing)} on PATH")
    if not _BUILT:
        builder = BuilderPlayground.create()
        # Registered before building, so a failed build is cleaned up too.
        request.config.add_cleanup(_cleanup)
        _BUILT.append(builder)
        builder.build_all()
    yield _BUILT[0]


def _cleanup() -> None:
    while _BUILT:
        _BUILT.pop().cleanup()
