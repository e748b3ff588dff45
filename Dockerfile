# One image, both services: `idp` and `resource-server` binaries.
# Build: docker build -t idp-suite .   (docker-compose.yml does this for you)

FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends pkg-config libssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p idp -p resource-server \
    && cp target/release/idp target/release/resource-server /usr/local/bin/

FROM debian:bookworm-slim AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libssl3 curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app app
COPY --from=build /usr/local/bin/idp /usr/local/bin/resource-server /usr/local/bin/
WORKDIR /app
USER app
EXPOSE 3000 4000
CMD ["idp"]
