#!/usr/bin/env bash
# Starts containerd and the Docker engine the way this project's tests need
# them (no registry, no bridge, no iptables), unless they already answer, and
# imports the busybox test image. Idempotent; safe to run before every suite.
set -euo pipefail

LOG_DIR=${BREAKWATER_LOG_DIR:-/var/log/breakwater-ci}
IMAGE=${BREAKWATER_TEST_IMAGE:-breakwater-test/busybox:latest}
mkdir -p "$LOG_DIR"

wait_for() { # wait_for <what> <command...>
  local what=$1; shift
  for _ in $(seq 1 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "docker-up: $what did not come up; see $LOG_DIR" >&2
  return 1
}

if ! ctr --address /run/containerd/containerd.sock version >/dev/null 2>&1; then
  mkdir -p /run/containerd
  nohup containerd >"$LOG_DIR/containerd.log" 2>&1 &
  wait_for containerd ctr --address /run/containerd/containerd.sock version
fi

if ! docker version >/dev/null 2>&1; then
  nohup dockerd --iptables=false --ip6tables=false --bridge=none \
    --containerd /run/containerd/containerd.sock >"$LOG_DIR/dockerd.log" 2>&1 &
  wait_for dockerd docker version
fi

if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
  rootfs=$(mktemp -d)
  trap 'rm -rf "$rootfs"' EXIT
  mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,tmp,proc,sys,dev,etc,root}
  cp /bin/busybox "$rootfs/bin/busybox"
  for applet in $("$rootfs/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -sf /bin/busybox "$rootfs/bin/$applet"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
  echo 'root:x:0:' >"$rootfs/etc/group"
  tar -C "$rootfs" -c . | docker import -c 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' -c 'CMD ["/bin/sh"]' - "$IMAGE" >/dev/null
fi
echo "docker-up: engine ready, image $IMAGE"
