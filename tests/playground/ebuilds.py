"""The small ebuild repository and configuration the builder playground builds.

Each package exercises one thing a binpkg records:

* ``app-misc/usetest-1``: IUSE with defaults (``+foo bar baz -qux``); ``bar``
  is enabled in make.conf, ``baz`` in package.use, so USE is ``baz bar foo``.
  Its RDEPEND is USE-conditional, so the binpkg shows the reduced form.
* ``dev-libs/libfoo-1``: SLOT="0/1", installs only a text file (no ELF).
* ``app-misc/usesfoo-1``: depends on ``dev-libs/libfoo:=``, so the binpkg's
  RDEPEND records ``dev-libs/libfoo:0/1=``.
* ``app-misc/hello-1``: compiles a C program with the host's gcc; stripping is
  off for it (package.env), so the ELF ``.comment`` section survives.
* ``app-misc/stripped-1``: the same program with Portage's default stripping,
  which removes ``.comment`` (``-R .comment`` in estrip's default flags).
* ``app-misc/legacy-1``: the C program again, built as an XPAK ``.tbz2``.
* ``app-misc/tested-1``: IUSE ``test`` and a ``src_test`` phase; not built by
  :data:`BUILD_ORDER`, tests build it with ``FEATURES=test``.
"""

from __future__ import annotations

import shutil
import subprocess

__all__ = [
    "BUILD_ORDER",
    "CFLAGS",
    "EBUILDS",
    "ENV_FILES",
    "LDFLAGS",
    "XPAK_PACKAGES",
    "blob_ebuild",
    "host_chost",
    "user_config",
]

CFLAGS = "-O2 -pipe"
LDFLAGS = "-Wl,-O1"

_C_PROGRAM = r"""
S="${WORKDIR}"
src_compile() {
	printf '#include <stdio.h>\nint main(void) { puts("%s"); return 0; }\n' "${PN}" > main.c || die
	${CC:-gcc} ${CFLAGS} ${LDFLAGS} -o "${PN}" main.c || die "compiling failed"
}
src_install() {
	dobin "${PN}"
}
"""

_TESTED = r"""
S="${WORKDIR}"
src_test() {
	echo "tests ran" > "${T}/tested" || die
}
src_install() {
	insinto /usr/share/${PN}
	newins - README <<< "${CATEGORY}/${PF}"
}
"""

_TEXT_ONLY = r"""
S="${WORKDIR}"
src_install() {
	insinto /usr/share/${PN}
	newins - README <<< "${CATEGORY}/${PF}"
}
"""

EBUILDS: dict[str, dict[str, str]] = {
    "app-misc/usetest-1": {
        "EAPI": "8",
        "IUSE": "+foo bar baz -qux",
        "LICENSE": "MIT",
        "RDEPEND": "qux? ( dev-libs/libfoo ) foo? ( app-misc/hello )",
        "MISC_CONTENT": _TEXT_ONLY,
    },
    "dev-libs/libfoo-1": {
        "EAPI": "8",
        "SLOT": "0/1",
        "LICENSE": "MIT",
        "MISC_CONTENT": _TEXT_ONLY,
    },
    "app-misc/usesfoo-1": {
        "EAPI": "8",
        "LICENSE": "MIT",
        "DEPEND": "dev-libs/libfoo:=",
        "RDEPEND": "dev-libs/libfoo:=",
        "MISC_CONTENT": _TEXT_ONLY,
    },
    "app-misc/hello-1": {
        "EAPI": "8",
        "LICENSE": "MIT",
        "RESTRICT": "bindist",
        "MISC_CONTENT": _C_PROGRAM,
    },
    "app-misc/stripped-1": {
        "EAPI": "8",
        "LICENSE": "MIT",
        "MISC_CONTENT": _C_PROGRAM,
    },
    "app-misc/legacy-1": {
        "EAPI": "8",
        "LICENSE": "MIT",
        "MISC_CONTENT": _C_PROGRAM,
    },
    "app-misc/tested-1": {
        "EAPI": "8",
        "LICENSE": "MIT",
        "IUSE": "test",
        "MISC_CONTENT": _TESTED,
    },
}

# One emerge per entry; XPAK_PACKAGES run with BINPKG_FORMAT=xpak in the environment.
BUILD_ORDER: tuple[tuple[str, ...], ...] = (
    ("app-misc/usetest", "app-misc/usesfoo", "app-misc/stripped"),
)
XPAK_PACKAGES: tuple[str, ...] = ("app-misc/legacy",)


def blob_ebuild(size: int) -> dict[str, str]:
    """An ebuild installing ``size`` random bytes (incompressible: the binpkg is that big)."""
    return {
        "EAPI": "8",
        "LICENSE": "MIT",
        "MISC_CONTENT": f"""
S="${{WORKDIR}}"
src_install() {{
\tinsinto /usr/share/${{PN}}
\thead -c {size} /dev/urandom > "${{T}}/blob" || die
\tdoins "${{T}}/blob"
\tnewins - VERSION <<< "${{PV}}"
}}
""",
    }


def big_package(size: int) -> dict[str, dict[str, str]]:
    """``app-misc/big-1``: installs ``size`` random bytes, so its binpkg is about as large."""
    return {"app-misc/big-1": blob_ebuild(size)}


def host_chost() -> str:
    """The host compiler's target triple (what CHOST must be for gcc to agree)."""
    gcc = shutil.which("gcc")
    if gcc is None:
        return "x86_64-pc-linux-gnu"
    out = subprocess.run(  # noqa: S603 - fixed program
        [gcc, "-dumpmachine"], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def user_config(chost: str) -> dict[str, list[str]]:
    """make.conf, package.use and package.env for the playground."""
    return {
        "make.conf": [
            f'CHOST="{chost}"',
            f'CFLAGS="{CFLAGS}"',
            f'CXXFLAGS="{CFLAGS}"',
            f'LDFLAGS="{LDFLAGS}"',
            'USE="bar"',
            'FEATURES="${FEATURES} buildpkg"',
        ],
        "package.use": ["app-misc/usetest baz"],
        "package.env": ["app-misc/hello nostrip.conf", "app-misc/legacy nostrip.conf"],
    }


# package.env names files under /etc/portage/env/; the builder writes these.
ENV_FILES: dict[str, str] = {"nostrip.conf": 'FEATURES="${FEATURES} nostrip"\n'}
