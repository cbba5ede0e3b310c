#!/usr/bin/env bash
# Makes the Containerfile's base image, docker.io/library/python:3.11-slim-bookworm, exist in
# podman's local storage when no image registry is reachable: a Debian bookworm root filesystem
# (debootstrap, minbase) with Python 3.11, venv, pip and the CA certificates, imported under
# exactly that name. Does nothing when podman already has the image (pulled or made before).
# The root filesystem is cached as var/image/<name>.tar, so a re-import takes seconds.
#   infra/image/base.sh            make the base image if it is missing
#   infra/image/base.sh --rebuild  make it anew (drop the cached tarball and the image first)
# Env: DEBIAN_MIRROR (default: the host's APT mirror, else http://deb.debian.org/debian).
set -euo pipefail
cd "$(dirname "$0")/../.."

BASE_IMAGE=docker.io/library/python:3.11-slim-bookworm
CACHE=var/image
TARBALL=$CACHE/python-3.11-slim-bookworm.tar
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/infra/image/containers.conf}

case "${1:-}" in
  -h | --help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  --rebuild) rm -f "$TARBALL"; podman image rm -f "$BASE_IMAGE" >/dev/null 2>&1 || true ;;
  "") ;;
  *) echo "base.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
esac

bash infra/require.sh podman runc debootstrap
if podman image exists "$BASE_IMAGE"; then
  echo "base.sh: $BASE_IMAGE is there"
  exit 0
fi

# The host's own Debian mirror (its deb822 sources, else sources.list), not a security one.
host_mirror() {
  cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
    grep -E '^(URIs:|deb )' | grep -Eo 'https?://[^ ]+' | grep -v security | head -n1 || true
}
mirror=${DEBIAN_MIRROR:-$(host_mirror)}
mirror=${mirror:-http://deb.debian.org/debian}

if [ ! -s "$TARBALL" ]; then
  echo "base.sh: debootstrap bookworm from $mirror (a few minutes, once)"
  rootfs=$CACHE/rootfs.tmp
  rm -rf "$rootfs" && mkdir -p "$rootfs"
  debootstrap --variant=minbase \
    --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates \
    bookworm "$rootfs" "$mirror"
  # Like the official image: deb822 sources with updates and security (for apt-get in later
  # stages), no package cache or lists, no host files; `python` is python-is-python3.
  rm -f "$rootfs/etc/apt/sources.list"
  cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  # Slim like Debian's -slim images: no docs (copyright notices stay), man pages or locales,
  # now or from packages installed later.
  printf 'path-exclude %s\n' /usr/share/doc/\* /usr/share/info/\* /usr/share/locale/\* \
    /usr/share/man/\* >"$rootfs/etc/dpkg/dpkg.cfg.d/slim"
  printf 'path-include %s\n' /usr/share/doc/\*/copyright /usr/share/locale/locale.alias \
    >>"$rootfs/etc/dpkg/dpkg.cfg.d/slim"
  find "${rootfs:?}/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "${rootfs:?}/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias \
    -exec rm -rf {} +
  rm -rf "${rootfs:?}"/usr/share/man/* "${rootfs:?}"/usr/share/info/*
  rm -rf "${rootfs:?}"/var/cache/apt/archives/*.deb "${rootfs:?}"/var/lib/apt/lists/* \
    "${rootfs:?}"/tmp/*
  : >"$rootfs/etc/resolv.conf"
  : >"$rootfs/etc/hostname"
  tar --numeric-owner -C "$rootfs" -cf "$TARBALL.tmp" .
  mv "$TARBALL.tmp" "$TARBALL"
  rm -rf "$rootfs"
fi

echo "base.sh: importing $TARBALL as $BASE_IMAGE"
podman import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  --message "debootstrap bookworm minbase + python3 (infra/image/base.sh)" \
  "$TARBALL" "$BASE_IMAGE" >/dev/null
echo "base.sh: $BASE_IMAGE made"
