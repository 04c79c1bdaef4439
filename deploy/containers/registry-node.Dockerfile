# The registry node, one image for every Party: countries differ in configuration
# (REGISTRY_* environment or an env file), not in code. Keys, config and the SQLite
# database live under /data, a volume.
#
#   docker build --network host -f deploy/containers/registry-node.Dockerfile \
#     -t a6-registry-node:local .
#   docker run --network host -v tha:/data a6-registry-node:local init --party THA ...
#   docker run --network host -v tha:/data a6-registry-node:local serve --env-file ...
#
# BASE_IMAGE is the official debian:bookworm-slim where a registry answers, or the one
# deploy/containers/prepare.sh builds locally under that name.
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS build
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# The host's extra CA certificates (empty elsewhere) are trusted by this stage only.
COPY deploy/containers/ca/ /usr/local/share/ca-certificates/
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends ca-certificates python3 python3-venv \
 && update-ca-certificates \
 && python3 -m venv /opt/venv
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt
WORKDIR /src
COPY pyproject.toml README.md ./
COPY services ./services
COPY shared ./shared
RUN /opt/venv/bin/pip install -q --upgrade pip && /opt/venv/bin/pip install -q .

FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends python3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 registry \
 && mkdir -p /data && chown registry /data
COPY --from=build /opt/venv /opt/venv
COPY deploy/containers/node_healthcheck.py /opt/a6/node_healthcheck.py
# No REGISTRY_* defaults here: the environment overrides the env file, so an image-level
# value would silently win over what `registry-node init` wrote.
ENV PATH=/opt/venv/bin:$PATH
USER registry
WORKDIR /data
VOLUME /data
# The port is the node's own (host network): the check resolves the node's settings.
HEALTHCHECK --interval=5s --timeout=4s --start-period=15s --retries=6 \
  CMD ["python3", "/opt/a6/node_healthcheck.py"]
ENTRYPOINT ["registry-node"]
CMD ["serve"]
