# hopgate container: `docker build -t hopgate .` then
#   docker run -v /etc/hopgate:/etc/hopgate -p 5986:5986 hopgate
# Mount a directory holding hopgate.toml, the certificates, the vault file and policies.
FROM rust:1-bookworm AS build
WORKDIR /src
# The whole source tree (see .dockerignore): the manifest names benches and tests, so
# cargo wants them present even for `--bin`.
COPY . .
# The `delegate` feature (Kerberos constrained delegation) links MIT GSSAPI: its headers
# and bindgen's libclang are needed to build, the runtime library in the final image.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libkrb5-dev libclang-dev \
 && rm -rf /var/lib/apt/lists/*
RUN cargo build --release --locked --features delegate --bin hopgate

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libgssapi-krb5-2 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/hopgate --create-home hopgate
COPY --from=build /src/target/release/hopgate /usr/local/bin/hopgate
COPY --from=build /src/policies /usr/share/hopgate/policies
COPY --from=build /src/hopgate.example.toml /usr/share/hopgate/hopgate.example.toml
USER hopgate
WORKDIR /etc/hopgate
EXPOSE 5986
ENTRYPOINT ["/usr/local/bin/hopgate"]
CMD ["serve", "-c", "/etc/hopgate/hopgate.toml"]
