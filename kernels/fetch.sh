#!/usr/bin/env bash
# fetch.sh CACHE: downloads Debian's cloud kernels (bullseye 5.10, bookworm
# 6.1, trixie 6.12; amd64 and arm64) and busybox-static for both from the
# Debian package registry through a private apt configuration (the host's
# sources, lists and caches are untouched), and unpacks each with dpkg-deb -x
# into CACHE/<suite>-<arch>/. Skips what is already unpacked.
set -euo pipefail
cache=${1:?usage: fetch.sh CACHE}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
suites=(bullseye bookworm trixie)
arches=(amd64 arm64)

apt_private() { # apt_private SUITE apt-get|apt-cache ARGS...
  local s=$1 tool=$2 dir=$cache/apt/$1
  shift 2
  "$tool" -q -o Dir::Etc::sourcelist="$dir/sources.list" -o Dir::Etc::sourceparts=- \
    -o Dir::State::Lists="$dir/lists" -o Dir::Cache="$dir/cache" \
    -o Dir::State::status=/dev/null \
    -o APT::Architectures::=amd64 -o APT::Architectures::=arm64 \
    -o Debug::NoLocking=1 -o APT::Sandbox::User=root "$@"
}

for s in "${suites[@]}"; do
  dir=$cache/apt/$s
  if [ ! -f "$dir/updated" ]; then
    mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
    echo "deb [arch=amd64,arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $s main" >"$dir/sources.list"
    apt_private "$s" apt-get update >/dev/null
    touch "$dir/updated"
  fi
  for a in "${arches[@]}"; do
    out=$cache/$s-$a
    [ -f "$out/done" ] && continue
    # The cloud flavour's metapackage names the current ABI; its -unsigned
    # build is the same kernel without the Secure Boot signature.
    img=$(apt_private "$s" apt-cache depends "linux-image-cloud-$a:$a" | sed -n 's/^ *Depends: \(linux-image-[0-9].*-cloud-'"$a"'\)\(-unsigned\)\?\(:'"$a"'\)\?$/\1/p' | head -1)
    [ -n "$img" ] || { echo "fetch: no cloud kernel for $s/$a" >&2; exit 1; }
    rm -rf "$out" && mkdir -p "$out/deb"
    pkgs=("$img-unsigned:$a")
    [ "$s" = bookworm ] && pkgs+=("busybox-static:$a")
    (cd "$out/deb" && apt_private "$s" apt-get download "${pkgs[@]}" >/dev/null)
    for d in "$out"/deb/*.deb; do dpkg-deb -x "$d" "$out/root"; done
    rm -rf "$out/deb" "$out"/root/lib/modules "$out"/root/usr/lib/modules
    echo "${img#linux-image-}" >"$out/done"
    echo "fetch: $s $a $img"
  done
done
