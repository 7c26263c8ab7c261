#!/usr/bin/env bash
# Hit-path load test: `catg serve` answering a cached variant vs nginx serving the same bytes
# as a static file, same machine, same run, wrk on loopback.
# usage: bench/serve_load.sh [seconds] [connections]      needs: wrk nginx (apt-get install wrk nginx-light)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
connections="${2:-64}"
for tool in wrk nginx curl; do command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install wrk nginx-light curl)" >&2; exit 1; }; done
cargo build --release --locked -q -p catg-cli
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
catg_port=$(free_port); nginx_port=$(free_port)
cp -r samples "$work/images"
target/release/catg serve --source "$work/images" --data "$work/data" --listen "127.0.0.1:$catg_port" 2>"$work/catg.log" &
until curl -sf "http://127.0.0.1:$catg_port/healthz" >/dev/null; do sleep 0.2; done
path="/chelsea.png?w=400&fmt=webp"
mkdir -p "$work/www"; chmod 755 "$work"  # nginx workers run unprivileged
curl -sf "http://127.0.0.1:$catg_port$path" -o "$work/www/variant.webp"
echo "variant: $(stat -c %s "$work/www/variant.webp") bytes"
cat > "$work/nginx.conf" <<CONF
daemon off;
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path $work/tmp; proxy_temp_path $work/tmp; fastcgi_temp_path $work/tmp; uwsgi_temp_path $work/tmp; scgi_temp_path $work/tmp;
  types { image/webp webp; }
  server { listen 127.0.0.1:$nginx_port; root $work/www; }
}
CONF
mkdir -p "$work/tmp"
nginx -c "$work/nginx.conf" &
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$nginx_port/variant.webp" >/dev/null && break; sleep 0.2; done
curl -sf "http://127.0.0.1:$nginx_port/variant.webp" >/dev/null || { echo "nginx does not serve the file: $(cat "$work/nginx-error.log")" >&2; exit 1; }
run() { wrk -t2 -c"$connections" -d"${seconds}s" --latency "$1" > "$work/$2.txt"; }
summary() {
  local f="$work/$1.txt"
  local rps p50 p99 errors
  rps=$(awk '/Requests\/sec/ {print $2}' "$f")
  p50=$(awk '$1=="50%" {print $2}' "$f"); p99=$(awk '$1=="99%" {print $2}' "$f")
  errors=$(awk '/Non-2xx|Socket errors/ {print}' "$f" | tr '\n' ' ')
  printf '%-6s %10s req/s   p50 %8s   p99 %8s   errors: %s\n' "$1" "$rps" "$p50" "$p99" "${errors:-none}"
}
run "http://127.0.0.1:$catg_port$path" catg
run "http://127.0.0.1:$nginx_port/variant.webp" nginx
summary catg; summary nginx
echo "ratio (catg / nginx throughput): $(echo "$(awk '/Requests\/sec/ {print $2}' "$work/catg.txt") / $(awk '/Requests\/sec/ {print $2}' "$work/nginx.txt")" | bc -l | cut -c1-5)"
