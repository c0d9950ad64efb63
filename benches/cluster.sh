#!/usr/bin/env bash
# Three nats-server processes with JetStream on loopback, clustered, for the replicated benches
# (README "Performance", "Replicated (issue 13)").
#
#   benches/cluster.sh start DIR [BASE]   # client ports BASE+1..3 (default 24220: 24221-24223),
#                                         # routes BASE+2001..3, monitoring BASE+4001..3
#   benches/cluster.sh stop DIR           # kills the three servers started into DIR
#   benches/cluster.sh urls [BASE]        # prints nats://127.0.0.1:24221,... for --nats / BENCH_NATS
#   benches/cluster.sh hall DIR NAME [BASE] [HTTP_BASE] [huashi flags...]
#                                         # a leader (huashi serve) on 127.0.0.1:HTTP_BASE+1 (default
#                                         # 24281) and two followers (huashi follow) on +2, +3, all with
#                                         # operator token "op", data and logs in DIR/nN; waits until
#                                         # the followers have caught up; prints the leader's pid
#   benches/cluster.sh hall-stop DIR      # stops them (SIGTERM)
#
# Each server keeps its store under DIR/sN and its pid in DIR/sN.pid; `start` wipes DIR's stores
# first, so every run begins with empty streams.
set -euo pipefail
NATS_SERVER=${NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}
cmd=${1:?usage: cluster.sh start|stop|urls ...}

urls() {
  local base=$1
  echo "nats://127.0.0.1:$((base + 1)),nats://127.0.0.1:$((base + 2)),nats://127.0.0.1:$((base + 3))"
}

case "$cmd" in
start)
  dir=${2:?cluster.sh start DIR [BASE]}
  base=${3:-24220}
  "$0" stop "$dir" 2>/dev/null || true
  mkdir -p "$dir"
  routes="nats-route://127.0.0.1:$((base + 2001)), nats-route://127.0.0.1:$((base + 2002)), nats-route://127.0.0.1:$((base + 2003))"
  for n in 1 2 3; do
    rm -rf "$dir/s$n"
    cat >"$dir/n$n.conf" <<CONF
server_name: n$n
listen: 127.0.0.1:$((base + n))
http: 127.0.0.1:$((base + 4000 + n))
jetstream { store_dir: "$dir/s$n" }
cluster { name: hc, listen: 127.0.0.1:$((base + 2000 + n)), routes: [$routes] }
CONF
    "$NATS_SERVER" -c "$dir/n$n.conf" >"$dir/n$n.log" 2>&1 &
    echo $! >"$dir/s$n.pid"
  done
  # Ready when the JetStream meta group has a leader that sees both other servers current: until
  # then an R3 stream cannot be placed ("no suitable peers for placement").
  ready=0
  for _ in $(seq 1 300); do
    current=0
    for n in 1 2 3; do
      c=$(curl -fs "http://127.0.0.1:$((base + 4000 + n))/jsz" 2>/dev/null | grep -c '"current": *true' || true)
      current=$((current + c))
    done
    if [ "$current" -ge 2 ]; then ready=1; break; fi
    sleep 0.1
  done
  if [ "$ready" != 1 ]; then
    echo "cluster.sh: the JetStream cluster in $dir did not form in 30 s (see $dir/n*.log)" >&2
    "$0" stop "$dir"
    exit 1
  fi
  urls "$base"
  ;;
stop)
  dir=${2:?cluster.sh stop DIR}
  pids=()
  for n in 1 2 3; do
    if [ -f "$dir/s$n.pid" ]; then
      pids+=("$(cat "$dir/s$n.pid")")
      rm -f "$dir/s$n.pid"
    fi
  done
  [ ${#pids[@]} = 0 ] && exit 0
  kill "${pids[@]}" 2>/dev/null || true
  # Wait for them to let go of their ports (a JetStream server takes a moment), then insist.
  for _ in $(seq 1 100); do
    alive=0
    for pid in "${pids[@]}"; do
      if kill -0 "$pid" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then alive=1; fi
    done
    [ "$alive" = 0 ] && exit 0
    sleep 0.1
  done
  kill -9 "${pids[@]}" 2>/dev/null || true
  ;;
urls)
  urls "${2:-24220}"
  ;;
hall)
  dir=${2:?cluster.sh hall DIR NAME [BASE] [HTTP_BASE]}
  hall=${3:?cluster.sh hall DIR NAME [BASE] [HTTP_BASE]}
  base=${4:-24220}
  http=${5:-24280}
  shift $(($# < 5 ? $# : 5))
  HUASHI=${HUASHI:-target/release/huashi}
  "$0" hall-stop "$dir" 2>/dev/null || true
  mkdir -p "$dir"
  for n in 1 2 3; do
    rm -rf "$dir/n$n"
    role=follow
    [ "$n" = 1 ] && role=serve
    "$HUASHI" "$role" --nats "$(urls "$base")" --hall "$hall" --listen "127.0.0.1:$((http + n))" \
      --data-dir "$dir/n$n" --operator-token op "$@" >"$dir/n$n.out" 2>"$dir/n$n.log" &
    echo $! >"$dir/n$n.pid"
    # The leader publishes the hall's genesis before the followers join.
    for _ in $(seq 1 100); do
      [ -s "$dir/n$n.out" ] && break
      sleep 0.1
    done
  done
  for _ in $(seq 1 100); do
    caught=0
    for n in 2 3; do
      curl -fs "http://127.0.0.1:$((http + n))/health" | grep -q '"role":"follower".*"lag":0' && caught=$((caught + 1))
    done
    [ "$caught" = 2 ] && break
    sleep 0.1
  done
  cat "$dir/n1.pid"
  ;;
hall-stop)
  dir=${2:?cluster.sh hall-stop DIR}
  for n in 1 2 3; do
    if [ -f "$dir/n$n.pid" ]; then
      pid=$(cat "$dir/n$n.pid")
      rm -f "$dir/n$n.pid"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  done
  ;;
*)
  echo "usage: cluster.sh start DIR [BASE] | stop DIR | urls [BASE] | hall DIR NAME [BASE] [HTTP_BASE] | hall-stop DIR" >&2
  exit 2
  ;;
esac
