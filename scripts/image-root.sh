#!/bin/sh
# image-root.sh ROOT: builds Warren's static binaries and lays out the
# container image's file system under ROOT. The Dockerfile runs it in its
# builder stage and copies ROOT into an empty image; conformance/image_test.go
# runs it into a temporary directory and starts the result, since no
# container engine runs on the development machines.
set -eu
root=${1:?usage: image-root.sh ROOT}
cd "$(dirname "$0")/.."

bin=$root/usr/local/bin
mkdir -p "$bin" "$root/etc/rabbitmq/conf.d" "$root/var/lib/rabbitmq" "$root/etc/ssl/certs"

# Static binaries, without symbol tables (the image stays small).
export CGO_ENABLED=0
go build -trimpath -ldflags='-s -w' -o "$bin/warren" ./cmd/warren
go build -trimpath -ldflags='-s -w' -o "$bin/warrenctl" ./cmd/warrenctl

# RabbitMQ's command names: the broker as rabbitmq-server (what compose
# files and scripts start), the CLI as its three tools.
ln -sf warren "$bin/rabbitmq-server"
for tool in rabbitmqctl rabbitmq-diagnostics rabbitmq-plugins; do
	ln -sf warrenctl "$bin/$tool"
done

# The user RabbitMQ's image runs as (uid and gid 999), so volumes made for
# it keep working.
printf 'root:x:0:0:root:/root:/sbin/nologin\nrabbitmq:x:999:999:RabbitMQ:/var/lib/rabbitmq:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nrabbitmq:x:999:\n' >"$root/etc/group"

# What RabbitMQ's management image configures: guest may log in from
# outside the container, logs go to the console, management and prometheus
# are enabled (both are built into Warren).
cat >"$root/etc/rabbitmq/conf.d/10-defaults.conf" <<'CONF'
# Defaults of RabbitMQ's container image, which Warren's follows.
# guest may connect from other hosts: the container's port is published.
loopback_users.guest = false
log.console = true
CONF
echo '[rabbitmq_management,rabbitmq_prometheus].' >"$root/etc/rabbitmq/enabled_plugins"

# CA certificates, for shovels to amqps:// URIs.
for ca in /etc/ssl/certs/ca-certificates.crt /etc/ssl/cert.pem; do
	if [ -f "$ca" ]; then
		cp "$ca" "$root/etc/ssl/certs/ca-certificates.crt"
		break
	fi
done
