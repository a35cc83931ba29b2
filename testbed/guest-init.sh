#!/bin/sh
# PID 1 of the zferry test VM (kernel cmdline init=/sbin/zferry-init).
# No systemd: under software emulation it would cost a minute per boot. We mount the
# pseudo filesystems, load zfs, start sshd and keep a root shell on the serial console.
PATH=/usr/sbin:/usr/bin:/sbin:/bin; export PATH HOME=/root
mountpoint -q /proc || mount -t proc proc /proc
mountpoint -q /sys || mount -t sysfs sys /sys
mountpoint -q /dev || mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts; mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run; mount -t tmpfs tmpfs /tmp; mount -o remount,rw /
hostname zferryvm
say() { echo "zferry-init: $(cut -d' ' -f1 /proc/uptime)s $*" >/dev/ttyS0; }
if grep -qw zferry.udev=1 /proc/cmdline; then
  /lib/systemd/systemd-udevd --daemon >/dev/null 2>&1 && udevadm trigger --action=add && udevadm settle -t 30
fi
modprobe virtio_net; ip link set lo up; ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0; ip route add default via 10.0.2.2
modprobe zfs && say "zfs $(cat /sys/module/zfs/version)"
mkdir -p /run/sshd; /usr/sbin/sshd -o UseDNS=no -o MaxSessions=64 -o MaxStartups=64 && say sshd
say READY
while :; do setsid -c /bin/bash -l <>/dev/ttyS0 >&0 2>&1; done
