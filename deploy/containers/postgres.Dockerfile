# PostgreSQL 15 from Debian's packages, on the same base image as the project's other
# images (BASE_IMAGE: the official debian:bookworm-slim, or the one prepare.sh builds).
# On the host network: each instance listens on 127.0.0.1:POSTGRES_PORT. The first start
# creates the cluster in /var/lib/postgresql/data (a volume) with POSTGRES_USER,
# POSTGRES_PASSWORD and POSTGRES_DB, as the official image does; later starts reuse it.
#
#   docker build --network host -f deploy/containers/postgres.Dockerfile -t a6-postgres:local .
#   docker run --network host -e POSTGRES_PORT=25432 -e POSTGRES_PASSWORD=... a6-postgres:local
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
 && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
COPY deploy/containers/postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data \
    POSTGRES_PORT=5432 POSTGRES_USER=postgres POSTGRES_DB=postgres
USER postgres
VOLUME /var/lib/postgresql/data
HEALTHCHECK --interval=3s --timeout=3s --start-period=10s --retries=20 \
  CMD pg_isready -q -h 127.0.0.1 -p "$POSTGRES_PORT" -U "$POSTGRES_USER" -d "$POSTGRES_DB"
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]
