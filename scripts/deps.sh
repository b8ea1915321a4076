#!/usr/bin/env bash
# Installs the Debian packages breakwater's build and tests use: clang, llvm,
# libbpf-dev and bpftool for `make generate`, the Docker engine, containerd
# and busybox-static for real containers, qemu-user to run the arm64
# table tests (no binfmt registration: the test binaries are run by name),
# iproute2's ss for the churn test. `deps.sh kernels` adds what
# `make test-kernels` needs: QEMU system emulators for amd64 and arm64, and
# compilers for the static i386 and arm64 attempt binaries (gcc-12-multilib,
# not gcc-multilib, which conflicts with the arm64 cross compiler).
# Skips what is already there.
set -euo pipefail
pkgs=(clang llvm libbpf-dev bpftool docker.io containerd runc busybox-static qemu-user util-linux iproute2)
if [ "${1:-}" = kernels ]; then
  pkgs=(busybox-static qemu-system-x86 qemu-system-arm gcc-12-multilib gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "deps: missing packages ${missing[*]}; run as root or install them" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
echo "deps: ${pkgs[*]} present"
