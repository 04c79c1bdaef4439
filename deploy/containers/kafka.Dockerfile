# Apache Kafka 4.1 in KRaft mode (one combined broker and controller), from the same
# Maven Central jars, pom.xml and settings as the local broker of deploy/kafka/broker.py:
# the build stage runs that script's ensure_jars(), the container runs `broker.py run`.
# Listens on 127.0.0.1:KAFKA_PORT (controller on KAFKA_PORT+1): run it on the host
# network. Data (KRaft metadata, logs) in /var/lib/kafka, a volume.
#
#   docker build --network host -f deploy/containers/kafka.Dockerfile -t a6-kafka:local .
#   docker run --network host -e KAFKA_PORT=29092 a6-kafka:local
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS jars
ENV DEBIAN_FRONTEND=noninteractive XDG_CACHE_HOME=/opt/cache
# The host's extra CA certificates (empty elsewhere) are trusted by this stage only;
# installing ca-certificates-java afterwards puts them in Java's trust store for Maven.
COPY deploy/containers/ca/ /usr/local/share/ca-certificates/
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends ca-certificates \
 && update-ca-certificates \
 && apt-get install -y -q --no-install-recommends ca-certificates-java maven python3
COPY deploy/kafka/broker.py deploy/kafka/pom.xml deploy/kafka/log4j2.properties /opt/kafka/
RUN python3 -c "import sys; sys.path.insert(0, '/opt/kafka'); import broker; print(broker.ensure_jars())"

FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive XDG_CACHE_HOME=/opt/cache PYTHONDONTWRITEBYTECODE=1
RUN apt-get update -q \
 && mkdir -p /usr/share/man/man1 \
 && apt-get install -y -q --no-install-recommends openjdk-17-jre-headless python3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10002 kafka \
 && mkdir -p /var/lib/kafka && chown kafka /var/lib/kafka
COPY deploy/kafka/broker.py deploy/kafka/pom.xml deploy/kafka/log4j2.properties /opt/kafka/
COPY --from=jars --chown=kafka /opt/cache /opt/cache
USER kafka
VOLUME /var/lib/kafka
ENV KAFKA_PORT=9092
# Healthy once the broker answers a Kafka Metadata request listing itself (broker.py's
# own readiness probe), not merely when the port is open.
HEALTHCHECK --interval=5s --timeout=5s --start-period=20s --retries=12 \
  CMD python3 /opt/kafka/broker.py status --port "$KAFKA_PORT" --data-dir /var/lib/kafka
ENTRYPOINT ["sh", "-c", "exec python3 /opt/kafka/broker.py run --port \"$KAFKA_PORT\" --data-dir /var/lib/kafka"]
