# Sourced by the measurement scripts: where a raw output goes and the header it starts with.
#
#   raw_path NAME   -> docs/bench/raw/NAME-<UTC date>-<short commit>.txt
#   raw_header WHAT -> prints "# WHAT" and the date, commit and machine lines

raw_path() {
    echo "docs/bench/raw/$1-$(date -u +%Y-%m-%d)-$(git rev-parse --short HEAD).txt"
}

raw_header() {
    local dirty=""
    git diff --quiet HEAD -- server storage protocol config client tests scripts docker \
        || dirty=" (working tree has uncommitted changes)"
    echo "# $1"
    echo "# date: $(date -u +%FT%TZ); commit: $(git rev-parse --short HEAD)${dirty}"
    echo "# machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
}

# The release binary, built if needed.
release_bin() {
    cargo build --release --quiet -p shardcache-server --bin shardcache >&2
    echo "$PWD/target/release/shardcache"
}

# Waits until something answers PING on 127.0.0.1:$1.
wait_ping() {
    local i
    for i in $(seq 1 200); do
        [[ "$(redis-cli -p "$1" PING 2>/dev/null)" == PONG ]] && return 0
        sleep 0.05
    done
    echo "nothing answers PING on port $1" >&2
    return 1
}
