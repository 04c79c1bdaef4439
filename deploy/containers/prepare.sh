#!/usr/bin/env bash
# Prepares this machine as a container host for the project, then builds its images.
# Idempotent: each step runs only when what it makes is missing.
#
#   1. the Docker Engine and docker-compose, from Debian's packages (docker.io,
#      docker-compose; debootstrap for step 3), when `dockerd` is missing;
#   2. dockerd, when no daemon answers on DOCKER_HOST (default /var/run/docker.sock):
#      started without a bridge or iptables rules (every container of this project
#      uses the host network, so all traffic stays on 127.0.0.1), log and pid in
#      var/containers/. A DOCKER_HOST other than the default socket gets a private
#      daemon that shares no state with the system one: data-root, pid and log in
#      var/containers/daemon-<socket name>/, exec-root next to the socket
#      (<socket path without .sock>.exec, short enough for containerd's own sockets).
#      Stop it with `kill $(cat var/containers/daemon-<socket name>/dockerd.pid)`;
#   3. the base image debian:bookworm-slim, when the engine has none: pulled where a
#      registry answers, otherwise built with debootstrap from the Debian mirror apt
#      already uses and imported under the official name, so the same Dockerfiles build
#      here and on a laptop with internet;
#   4. the project's images a6-registry-node:local, a6-kafka:local, a6-postgres:local
#      (the engine's layer cache makes a rebuild without changes take seconds).
#
# Build steps that download from PyPI or Maven Central over TLS trust the CA
# certificates in A6_BUILD_CA_DIR (default /usr/local/share/ca-certificates, where a
# host's own additions live): they are copied to deploy/containers/ca/ (git-ignored)
# and used by the build stages only; no final image contains them.
#
# Usage: deploy/containers/prepare.sh [--no-images] [--no-cache] [IMAGE ...]
#   IMAGE: build only these of the images above (e.g. a6-kafka:local a6-postgres:local,
#   as tests/conftest.py does for the shared service fixtures); default all.
#   --no-cache: rebuild every layer of the images (the base image is reused), as
#   bench/containers_bench.py does to time a build from nothing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
REPO_ROOT=$PWD

STATE_DIR=$REPO_ROOT/var/containers
BASE_IMAGE=${A6_BASE_IMAGE:-debian:bookworm-slim}
BASE_SUITE=bookworm
CA_SOURCE_DIR=${A6_BUILD_CA_DIR:-/usr/local/share/ca-certificates}
CA_CONTEXT_DIR=$REPO_ROOT/deploy/containers/ca
# dockerd needs a few seconds to start containerd and load its state; a loaded 2-core
# machine can need ten times that.
DOCKERD_START_TIMEOUT_S=120
# A registry that does not answer should not hold the script for long.
BASE_PULL_TIMEOUT_S=60
DEBOOTSTRAP_TIMEOUT_S=900
APT_TIMEOUT_S=900

IMAGES=(
  "a6-registry-node:local deploy/containers/registry-node.Dockerfile"
  "a6-kafka:local deploy/containers/kafka.Dockerfile"
  "a6-postgres:local deploy/containers/postgres.Dockerfile"
)

build_images=1
build_args=()
only_images=()
for arg in "$@"; do
  case $arg in
    --no-images) build_images=0 ;;
    --no-cache) build_args+=(--no-cache) ;;
    a6-*:*)
      known=0
      for entry in "${IMAGES[@]}"; do [ "${entry%% *}" = "$arg" ] && known=1; done
      [ "$known" -eq 1 ] || { echo "$0: unknown image $arg" >&2; exit 2; }
      only_images+=("$arg") ;;
    *) echo "usage: $0 [--no-images] [--no-cache] [IMAGE ...]" >&2; exit 2 ;;
  esac
done

log() { echo "[prepare] $*" >&2; }
die() { echo "[prepare] error: $*" >&2; exit 1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

mkdir -p "$STATE_DIR"
started=$SECONDS

# ---------------------------------------------------------------- 1. engine and compose
missing=()
# dockerd itself is needed only where this script has to start it.
if ! docker info >/dev/null 2>&1; then command -v dockerd >/dev/null || missing+=(docker.io); fi
command -v docker >/dev/null || missing+=(docker.io)
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null; then
  missing+=(docker-compose)
fi
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]} debootstrap from Debian's packages"
  as_root env DEBIAN_FRONTEND=noninteractive timeout "$APT_TIMEOUT_S" apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive timeout "$APT_TIMEOUT_S" \
    apt-get install -y -q --no-install-recommends "${missing[@]}" debootstrap
fi

# ----------------------------------------------------------------------------- 2. dockerd
DEFAULT_DOCKER_HOST=unix:///var/run/docker.sock
host=${DOCKER_HOST:-$DEFAULT_DOCKER_HOST}
if docker info >/dev/null 2>&1; then
  log "a Docker daemon answers on $host"
else
  case $host in
    unix://*) ;;
    *) die "no Docker daemon answers on $host, and only a local unix socket can be started here" ;;
  esac
  daemon_dir=$STATE_DIR
  private_args=()
  if [ "$host" != "$DEFAULT_DOCKER_HOST" ]; then
    # A private daemon: nothing shared with the system daemon or another private one.
    socket=${host#unix://}
    socket_name=$(basename "$socket" .sock)
    daemon_dir=$STATE_DIR/daemon-$socket_name
    mkdir -p "$daemon_dir/data"
    private_args=(--data-root "$daemon_dir/data" --exec-root "${socket%.sock}.exec")
  fi
  log "starting dockerd on $host (log: $daemon_dir/dockerd.log)"
  # setsid: the daemon outlives this script and its terminal; --bridge=none and
  # --iptables=false: no docker0, no NAT; containers use the host network.
  as_root setsid dockerd --host "$host" --bridge=none --iptables=false \
    "${private_args[@]}" --pidfile "$daemon_dir/dockerd.pid" \
    >>"$daemon_dir/dockerd.log" 2>&1 </dev/null &
  deadline=$((SECONDS + DOCKERD_START_TIMEOUT_S))
  until docker info >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      tail -n 30 "$daemon_dir/dockerd.log" >&2 || true
      die "dockerd did not answer on $host within ${DOCKERD_START_TIMEOUT_S} s"
    fi
    sleep 1
  done
  log "dockerd answers (pid $(cat "$daemon_dir/dockerd.pid" 2>/dev/null || echo '?'))"
fi

# ------------------------------------------------------------------------ 3. base image
debian_mirror() {
  # The first Debian archive apt is configured with (deb822 or one-line sources).
  local uri
  uri=$(awk '/^URIs:/ && $2 ~ /debian\/?$/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  if [ -z "$uri" ]; then
    uri=$(awk '$1 == "deb" && $0 ~ / bookworm / && $0 !~ /security/ {print $2; exit}' \
      /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  log "base image $BASE_IMAGE present"
elif timeout "$BASE_PULL_TIMEOUT_S" docker pull -q "$BASE_IMAGE" >/dev/null 2>&1; then
  log "pulled $BASE_IMAGE"
else
  command -v debootstrap >/dev/null || as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends debootstrap
  mirror=$(debian_mirror)
  rootfs=$STATE_DIR/rootfs-$BASE_SUITE
  log "no registry answers: building $BASE_IMAGE with debootstrap from $mirror"
  as_root rm -rf "$rootfs"
  step=$SECONDS
  as_root timeout "$DEBOOTSTRAP_TIMEOUT_S" debootstrap --variant=minbase "$BASE_SUITE" \
    "$rootfs" "$mirror" >"$STATE_DIR/debootstrap.log" 2>&1 \
    || { tail -n 30 "$STATE_DIR/debootstrap.log" >&2; die "debootstrap failed"; }
  # What the official slim image also leaves out: downloaded packages and indexes.
  as_root rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  as_root tar -C "$rootfs" -c . | docker import \
    --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    - "$BASE_IMAGE" >/dev/null
  as_root rm -rf "$rootfs"
  log "imported $BASE_IMAGE in $((SECONDS - step)) s"
fi

if [ "$build_images" -eq 0 ]; then
  log "done in $((SECONDS - started)) s (images not built: --no-images)"
  exit 0
fi

# --------------------------------------------------------------------- 4. project images
mkdir -p "$CA_CONTEXT_DIR"
find "$CA_CONTEXT_DIR" -name '*.crt' -delete
if compgen -G "$CA_SOURCE_DIR/*.crt" >/dev/null; then
  cp "$CA_SOURCE_DIR"/*.crt "$CA_CONTEXT_DIR"/
fi

for entry in "${IMAGES[@]}"; do
  read -r tag dockerfile <<<"$entry"
  if [ ${#only_images[@]} -gt 0 ] && [[ " ${only_images[*]} " != *" $tag "* ]]; then
    continue
  fi
  step=$SECONDS
  # The legacy builder (DOCKER_BUILDKIT=0) works with every engine and CLI pairing here;
  # --network host because the engine runs without a bridge.
  DOCKER_BUILDKIT=0 docker build "${build_args[@]}" --network host --build-arg "BASE_IMAGE=$BASE_IMAGE" \
    -f "$dockerfile" -t "$tag" . >"$STATE_DIR/build-${tag%%:*}.log" 2>&1 \
    || { tail -n 40 "$STATE_DIR/build-${tag%%:*}.log" >&2; die "building $tag failed"; }
  size=$(docker image inspect -f '{{.Size}}' "$tag")
  log "built $tag in $((SECONDS - step)) s ($((size / 1000000)) MB)"
done
log "done in $((SECONDS - started)) s"
