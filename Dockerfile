# syntax=docker/dockerfile:1
# The ringcast container image: the release binary alone on a distroless
# glibc base, run as uid 65532. Build from the repository root (the whole
# workspace is the build context; .dockerignore keeps target/ and .git out):
#
#   docker build -t ringcast:0.1.0 .
#   docker run --rm -p 8080:8080 ringcast:0.1.0 --profile medium
#
# The tag is the workspace version (Cargo.toml), the one
# deploy/kubernetes/deployment.yaml names. The entrypoint is `ringcast
# serve`; arguments after the image name are serve's flags. The listen
# address defaults to 0.0.0.0:8080 through RINGCAST_SERVER__LISTEN, so
# `--listen` or `--set server.listen=...` overrides it. Checked, without an
# engine, by deploy/docker/test.sh.

# The workspace's rust-version (Cargo.toml); the newest dependency needs it.
ARG RUST_VERSION=1.88

FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
# The hardware profiles are compiled in (include_str!), so the binary needs
# no file beside it. Cache mounts keep the registry and target/ between builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p ringcast \
    && install -D -m 0755 target/release/ringcast /out/ringcast

# glibc and libgcc_s are all the binary links (ldd); the builder is bookworm
# too, so the glibc versions match. No shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="ringcast" \
      org.opencontainers.image.description="WebSocket messaging server: one io_uring event loop per core" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"
COPY --from=build /out/ringcast /usr/local/bin/ringcast
ENV RINGCAST_SERVER__LISTEN=0.0.0.0:8080
# The distroless "nonroot" user, as deploy/kubernetes runs it (runAsUser).
USER 65532:65532
# WebSockets (/ws, /echo) and plain HTTP (/healthz, /readyz, /metrics).
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/ringcast", "serve"]
