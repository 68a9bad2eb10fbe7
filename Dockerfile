# Warren as a drop-in for RabbitMQ's container image (rabbitmq:3-management):
# same ports, data under /var/lib/rabbitmq, configuration read from
# /etc/rabbitmq (rabbitmq.conf, conf.d/*.conf, RABBITMQ_DEFAULT_USER/PASS),
# rabbitmqctl, rabbitmq-diagnostics and rabbitmq-plugins in PATH.
#
#   docker build -t warren .
#   docker run -p 5672:5672 -p 15672:15672 warren
#
# The file system is laid out by scripts/image-root.sh, which
# conformance/image_test.go also runs, outside a container, to start the
# command below with the environment below and check it.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN scripts/image-root.sh /rootfs

FROM scratch
COPY --from=build /rootfs/ /
COPY --from=build --chown=999:999 /rootfs/var/lib/rabbitmq/ /var/lib/rabbitmq/
ENV PATH=/usr/local/bin
ENV HOME=/var/lib/rabbitmq
ENV WARREN_STORAGE_DIR=/var/lib/rabbitmq
ENV WARREN_RABBITMQ_DIR=/etc/rabbitmq
USER 999:999
WORKDIR /var/lib/rabbitmq
VOLUME /var/lib/rabbitmq
# AMQP, AMQPS (when configured), management, Prometheus, and the clustering
# port RabbitMQ's image exposes (Warren has no clustering yet: nothing
# listens there).
EXPOSE 5672 5671 15672 15692 25672
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 CMD ["rabbitmq-diagnostics", "-q", "ping"]
CMD ["rabbitmq-server"]
