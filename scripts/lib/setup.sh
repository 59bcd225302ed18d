# Shared set-up steps for scripts/test and scripts/demo (sourced, not run).

python_bin() {
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  echo "setup: Python >= 3.11 is required; install it and run again" >&2
  return 1
}

# Tools the real Portage needs in its playgrounds (GNU tar as gtar, zstd,
# bzip2, flock; scanelf from pax-utils, without which Portage neither strips
# nor records PROVIDES/REQUIRES), every other compressor Portage can make
# binpkgs with (the tests read one of each), gpg for signed gpkgs, a C compiler
# for the builder test packages, and the compilers the descriptor tests ask
# what CFLAGS mean: the AArch64 and POWER cross GCCs, and Clang (packages built
# by Clang are asked of Clang).
ensure_system_packages() {
  local missing=()
  command -v zstd >/dev/null || missing+=(zstd)
  command -v bzip2 >/dev/null || missing+=(bzip2)
  command -v gzip >/dev/null || missing+=(gzip)
  command -v xz >/dev/null || missing+=(xz-utils)
  command -v lz4 >/dev/null || missing+=(lz4)
  command -v lzip >/dev/null || missing+=(lzip)
  command -v lzop >/dev/null || missing+=(lzop)
  command -v gpg >/dev/null || missing+=(gnupg)
  command -v flock >/dev/null || missing+=(util-linux)
  command -v gcc >/dev/null || missing+=(gcc)
  command -v strip >/dev/null || missing+=(binutils)
  command -v scanelf >/dev/null || missing+=(pax-utils)
  command -v tar >/dev/null || missing+=(tar)
  command -v aarch64-linux-gnu-gcc >/dev/null || missing+=(gcc-aarch64-linux-gnu)
  command -v powerpc64le-linux-gnu-gcc >/dev/null || missing+=(gcc-powerpc64le-linux-gnu)
  command -v clang >/dev/null || missing+=(clang)
  # the serve page's test loads it in a real browser (Debian's headless Chromium)
  command -v chromium-headless-shell >/dev/null || command -v chromium >/dev/null \
    || missing+=(chromium-headless-shell)
  # Debian's python3 lacks venv (ensurepip) until python3-venv is installed.
  if [ ! -x .venv/bin/python ] && ! "$(python_bin)" -c 'import ensurepip' 2>/dev/null; then
    missing+=(python3-venv)
  fi
  if [ "${#missing[@]}" -gt 0 ]; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
      echo "setup: installing ${missing[*]}" >&2
      apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
    else
      echo "setup: please install: ${missing[*]}" >&2
      return 1
    fi
  fi
}

# What scripts/bench/fetch.py compares against: Debian's nginx and curl. Installed with
# service starts held back (policy-rc.d), since the benchmark runs its own nginx.
ensure_bench_packages() {
  local missing=()
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
  command -v curl >/dev/null || missing+=(curl)
  if [ "${#missing[@]}" -gt 0 ]; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
      echo "setup: installing ${missing[*]}" >&2
      apt-get update -qq >&2 && RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq "${missing[@]}" >&2
    else
      echo "setup: please install: ${missing[*]}" >&2
      return 1
    fi
  fi
}

# Create or refresh .venv; reinstall only when pyproject.toml changed.
ensure_venv() {
  local py stamp want
  if [ ! -x .venv/bin/python ]; then
    py=$(python_bin)
    echo "setup: creating .venv with $py" >&2
    "$py" -m venv .venv
  fi
  stamp=.venv/.ipfsbin-installed
  want=$(sha256sum pyproject.toml | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "setup: installing ipfsbin and its test tools into .venv" >&2
    .venv/bin/python -m pip install -q --upgrade pip >&2
    .venv/bin/python -m pip install -q -e '.[test]' >&2
    echo "$want" >"$stamp"
  fi
}

# Build Kubo once (cached per version in the user's cache dir).
ensure_kubo() {
  local bin
  bin=$(scripts/install-kubo)
  export IPFSBIN_KUBO_BIN="$bin"
}

# Build IPFS Cluster's commands once (cached per version); the mirror tests run a cluster.
ensure_cluster() {
  local dir
  dir=$(scripts/install-cluster)
  export IPFSBIN_CLUSTER_DIR="$dir"
}
