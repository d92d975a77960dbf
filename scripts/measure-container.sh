#!/usr/bin/env bash
# The container figures in the README: the image's size and how long `podman stop -t 10` takes
# with an idle client connected. Builds the static binary the way docker/Dockerfile does (into
# target/static, as tests/tests/container.rs), builds the Dockerfile with podman (the `build`
# stage replaced by that binary: no registry is needed), then starts the image and stops it
# ROUNDS times (default 5), each time with one idle client connected.
#
#   scripts/measure-container.sh            # prints; raw output to docs/bench/raw/
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/raw-lib.sh
ROUNDS=${ROUNDS:-5}
PORT=${PORT:-7414}
TARGET=x86_64-unknown-linux-gnu
out=$(raw_path container)
podman=(podman --runtime runc)
image="localhost/shardcache-measure:$$"
name="shardcache-measure-$$"
ctx=$(mktemp -d)
cleanup() {
    "${podman[@]}" rm -f -t 0 "$name" >/dev/null 2>&1 || true
    "${podman[@]}" rmi -f "$image" >/dev/null 2>&1 || true
    rm -rf "$ctx"
}
trap cleanup EXIT

RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR=target/static \
    CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_STRIP=symbols \
    cargo build --quiet --release --locked -p shardcache-server --target "$TARGET"
mkdir -p "$ctx/out"
cp "target/static/$TARGET/release/shardcache" "$ctx/out/shardcache"
"${podman[@]}" build --quiet --format docker --layers=false --pull=never \
    --build-context "build=$ctx" -f docker/Dockerfile -t "$image" . >/dev/null 2>&1

{
    raw_header "scripts/measure-container.sh: image size, then ${ROUNDS} x (podman run; idle client; podman stop -t 10); $(podman --version)"
    echo "binary: $(stat -c %s "$ctx/out/shardcache") bytes (static, stripped)"
    size=$("${podman[@]}" image inspect --format '{{.Size}}' "$image")
    echo "image: ${size} bytes ($(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1e6 }') MB)"
    for r in $(seq 1 "$ROUNDS"); do
        # The same limits as tests/tests/container.rs (runc here refuses the defaults).
        "${podman[@]}" run -d --ulimit nofile=20000:20000 --ulimit nproc=1024:1024 \
            --name "$name" -p "127.0.0.1:$PORT:6379" "$image" >/dev/null
        wait_ping "$PORT"
        exec 3<>"/dev/tcp/127.0.0.1/$PORT"
        printf 'PING\r\n' >&3
        read -r -t 5 pong <&3
        start=$(date +%s.%N)
        "${podman[@]}" stop -t 10 "$name" >/dev/null 2>&1
        end=$(date +%s.%N)
        exec 3<&-
        code=$("${podman[@]}" inspect --format '{{.State.ExitCode}}' "$name")
        deadline=$("${podman[@]}" logs "$name" 2>&1 | grep -c 'shutdown deadline' || true)
        echo "stop $r: $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }') s, exit code $code, idle client answered ${pong%$'\r'}, deadline warnings $deadline"
        "${podman[@]}" rm -f -t 0 "$name" >/dev/null 2>&1
    done
} | tee "$out"
echo "raw output: $out" >&2
