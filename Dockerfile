# mailgate in a container: a static binary on a minimal base, run as a
# non-root user.
#
#   docker build -t mailgate .
#   docker run -d --name mailgate -p 110:110 -p 143:143 -p 25:25 \
#       -v /etc/nginx:/etc/mailgate:ro mailgate -c /etc/mailgate/mailgate.conf
#
# The configuration is nginx's (a mailgate.conf written by "mailgate
# migrate", or any nginx.conf with mail{}). Logs go to stderr unless the
# configuration says otherwise; the pid file, if the configuration names
# none, is /var/lib/mailgate/logs/nginx.pid (the prefix's default).
#
# Ports below 1024: the binary carries the file capability
# CAP_NET_BIND_SERVICE, set in the build stage. Whether COPY --from keeps
# it depends on the builder (moby/moby#38132, moby/buildkit#2250); Docker
# 20.10 and newer also let any user bind low ports inside a container
# (net.ipv4.ip_unprivileged_port_start=0). Elsewhere give the container
# the capability or that sysctl (Kubernetes: securityContext
# capabilities add NET_BIND_SERVICE).

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# A static binary: no cgo, so no libc is needed at run time.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/mailgate ./cmd/mailgate \
 && apt-get update && apt-get install -y --no-install-recommends libcap2-bin \
 && setcap cap_net_bind_service=+ep /out/mailgate \
 && mkdir -p /out/var/lib/mailgate/logs

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/mailgate /usr/sbin/mailgate
COPY --from=build --chown=65532:65532 /out/var/lib/mailgate /var/lib/mailgate
USER 65532:65532
EXPOSE 25 110 143 465 587 993 995
# QUIT is the graceful stop (running sessions finish), as for nginx.
STOPSIGNAL SIGQUIT
ENTRYPOINT ["/usr/sbin/mailgate", "-p", "/var/lib/mailgate/", "-g", "daemon off;"]
CMD ["-c", "/etc/mailgate/mailgate.conf"]
