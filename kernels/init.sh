#!/bin/busybox sh
# The VM's init: runs `breakwater check`, starts breakwater as a container
# the way the exporter is deployed (its own cgroup that looks like a Docker
# container's, its own mount namespace), runs every case of /cases in a
# container-like cgroup of its own, and prints the exporter's metrics.
# Sections are framed by "=== " lines for the harness to parse.
/bin/busybox --install -s /bin
set -f
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tmpfs tmp /tmp
mkdir -p /run /var && ln -s /run /var/run
ip link set lo up
up() { cut -d' ' -f1 /proc/uptime; }

echo "=== boot $(up) $(uname -r) $(uname -m)"
echo "=== check"
/breakwater check
echo "=== check-rc $? $(up)"

# A runtime's API socket, played by a host process named like the runtime.
mkdir -p /run/podman
/attempt as-comm podman listen-unix /run/podman/podman.sock 3600 >/dev/null &
until [ -S /run/podman/podman.sock ]; do sleep 0.1; done

# breakwater in a container-like cgroup: it must never count itself.
slice=/sys/fs/cgroup/system.slice
mkdir -p $slice
echo +pids >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
self=$slice/docker-$(cat /self-id).scope
mkdir $self
unshare -m sh -c "echo \$\$ >$self/cgroup.procs && exec /breakwater --web.listen-address=127.0.0.1:9760" >/tmp/breakwater.log 2>&1 &
i=0
until wget -qO- http://127.0.0.1:9760/metrics 2>/dev/null | grep -q '^breakwater_scrape_collector_success{collector="security"}'; do
	i=$((i + 1))
	if [ $i -gt 600 ] || ! kill -0 $! 2>/dev/null; then
		echo "=== exporter-failed $(up)"
		break
	fi
	sleep 1
done
[ $i -gt 600 ] || ! kill -0 $! 2>/dev/null || echo "=== exporter-up $(up)"
echo "=== self-cgroup $(cat /proc/$!/cgroup)"

while read id bin name args; do
	cg=$slice/docker-$id.scope
	mkdir $cg
	echo "=== case $name"
	unshare -m sh -c "echo \$\$ >$cg/cgroup.procs && exec $bin $args" 2>&1
	echo "=== case-rc $?"
done </cases
echo "=== cases-done $(up)"

# breakwater learns new cgroups from ring-buffer events: scrape once it
# tracks every case's (and its own), or programs did not load.
want=$(($(wc -l </cases) + 1))
i=0
while [ $i -lt 60 ]; do
	tracked=$(wget -qO- http://127.0.0.1:9760/metrics | sed -n 's/^breakwater_tracked_containers //p')
	[ "${tracked:-0}" -ge $want ] 2>/dev/null && break
	[ "${tracked:-0}" = 0 ] && ! wget -qO- http://127.0.0.1:9760/metrics | grep -q '^breakwater_scrape_collector_success{collector="security"} 1' && break
	sleep 1
	i=$((i + 1))
done
echo "=== tracked ${tracked:-none} of $want after ${i}s"
echo "=== metrics"
wget -qO- http://127.0.0.1:9760/metrics | grep -e '^breakwater_' -e '^# TYPE breakwater_'
echo "=== log"
cat /tmp/breakwater.log
echo "=== done $(up)"
poweroff -f
