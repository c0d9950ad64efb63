#!/usr/bin/env bash
# Readers at scale on a replicated hall (issue 13, README "Performance"): 10,000 feed subscribers
# spread over a leader and two followers, against the same 10,000 on the leader alone, alternately
# in the same run, then (for reference) a lone `huashi serve` with durability "none" as in the
# single-node feed row. Needs release binaries and a NATS cluster from `benches/cluster.sh start`.
#
#   cargo build --release -p huashi -p huashi-benches
#   benches/cluster.sh start /tmp/perf-nats
#   benches/readers.sh [ROUNDS_OF_EACH] [SUBSCRIBERS]     # default 2 rounds, 10000 subscribers
#   benches/cluster.sh stop /tmp/perf-nats
#
# Each loadgen line is printed with the CPU seconds each server process spent during it.
set -u
rounds=${1:-2}
subscribers=${2:-10000}
dir=/tmp/perf-readers
hall=r$(date +%s)
here=$(dirname "$0")
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ticks=$(getconf CLK_TCK)
loadgen() { # NAME PIDS -- loadgen args
  local name=$1 pids=$2
  shift 2
  local before=() after=() i=0
  for p in $pids; do before+=("$(cpu "$p")"); done
  echo "=== $name: $(uptime)"
  local cpu_flags=""
  for p in $pids; do cpu_flags="$cpu_flags --cpu-pid $p"; done
  # shellcheck disable=SC2086
  timeout 900 target/release/loadgen --operator-token op --buyers 100 --subscribers "$subscribers" --bids-per-round 1 $cpu_flags "$@" 2>&1 |
    grep -vE '^$|^registered|RSS'
  for p in $pids; do after+=("$(cpu "$p")"); done
  local line="server CPU during the whole run (setup included):"
  for p in $pids; do
    line="$line pid $p $(echo "scale=1; (${after[$i]} - ${before[$i]}) / $ticks" | bc) s;"
    i=$((i + 1))
  done
  echo "$line"
}

leader=$("$here/cluster.sh" hall "$dir" "$hall")
nodes="$leader $(cat "$dir/n2.pid") $(cat "$dir/n3.pid")"
echo "hall $hall: leader pid $leader, followers $(cat "$dir/n2.pid") $(cat "$dir/n3.pid")"
spread="--feed-url ws://127.0.0.1:24281 --feed-url ws://127.0.0.1:24282 --feed-url ws://127.0.0.1:24283"
for round in $(seq 1 "$rounds"); do
  # shellcheck disable=SC2086
  loadgen "spread over 3 nodes (round $round)" "$nodes" --url ws://127.0.0.1:24281 $spread --server-pid "$leader"
  loadgen "all on the leader (round $round)" "$nodes" --url ws://127.0.0.1:24281 --server-pid "$leader"
done
for n in 1 2 3; do curl -s "http://127.0.0.1:$((24280 + n))/health"; echo; done
"$here/cluster.sh" hall-stop "$dir"
echo "warnings and errors in the nodes' logs:"
grep -ciE "warn|error" "$dir"/n*.log

rm -rf "$dir/single"
mkdir -p "$dir/single"
printf '[engine]\ndurability = "none"\n' >"$dir/single.toml"
target/release/huashi serve --listen 127.0.0.1:24290 --data-dir "$dir/single/data" --operator-token op \
  --config "$dir/single.toml" >"$dir/single.out" 2>"$dir/single.log" &
single=$!
for _ in $(seq 1 100); do [ -s "$dir/single.out" ] && break; sleep 0.1; done
loadgen "a lone huashi serve, durability none" "$single" --url ws://127.0.0.1:24290 --server-pid "$single"
kill "$single"
wait "$single"
