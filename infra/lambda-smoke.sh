#!/usr/bin/env bash
# Smoke test of the four compiled functions under a real Lambda Runtime API emulator:
# `cargo lambda watch --only-lambda-apis` serves the Runtime API, the function binaries poll it
# as they do on Lambda, and `cargo lambda invoke --data-file` sends the payloads from events/
# (bucket and key filled in), against moto and DynamoDB Local. Run by scripts/test.
#
# The binaries come from one `cargo build --workspace --all-features --bins --tests --examples`:
# the targets `cargo test` builds, so the features are unified as in the test suite's build and
# the dependencies compile once for both (without the tests, the dev-dependencies' features are
# left out and tokio, hyper and the AWS SDK compile twice; letting `cargo lambda watch` build
# each function would compile them all again with other features).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=infra/tools.sh
source infra/tools.sh
work=$(mktemp -d)
stack_env="$work/stack.env"
cleanup() { kill "${watch_pid:-}" "${function_pids[@]}" 2>/dev/null || true; infra/local-stack.sh down "$stack_env"; rm -rf "$work"; }
trap cleanup EXIT
if [[ -z "${AWS_ENDPOINT_URL_S3:-}" ]]; then
  infra/local-stack.sh up "$stack_env"
  # shellcheck disable=SC1090
  source "$stack_env"
fi
need_cargo_lambda
function_pids=()
echo "== building the functions" >&2
cargo build --workspace --all-features --bins --tests --examples --locked
bin_dir="${CARGO_TARGET_DIR:-target}/debug"
export PATH="$tools/venv/bin:$PATH"
py="$tools/venv/bin/python"   # moto brings boto3: it sets up the resources below

id="smoke-$$"
"$py" - "$id" >"$work/resources.env" <<'PY'
import sys, boto3
name = sys.argv[1]
s3, sqs, ddb = boto3.client("s3"), boto3.client("sqs"), boto3.client("dynamodb")
for bucket in (f"{name}-src", f"{name}-var"):
    s3.create_bucket(Bucket=bucket)
# The table exactly as template.yaml's ManifestTable declares it (key and indexes), so the two
# cannot drift apart. CloudFormation's tags (!Ref, !Sub, …) are read as plain values.
import yaml
class Loader(yaml.SafeLoader):
    pass
Loader.add_multi_constructor("!", lambda loader, suffix, node: (
    loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode)
    else loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode)
    else loader.construct_mapping(node)))
with open("template.yaml") as f:
    table = yaml.load(f, Loader=Loader)["Resources"]["ManifestTable"]["Properties"]
ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                 AttributeDefinitions=table["AttributeDefinitions"], KeySchema=table["KeySchema"],
                 GlobalSecondaryIndexes=table["GlobalSecondaryIndexes"])
url = sqs.create_queue(QueueName=name)["QueueUrl"]
print(f"CATG_SOURCE_BUCKET={name}-src\nCATG_VARIANTS_BUCKET={name}-var\nCATG_TABLE={name}\nCATG_QUEUE_URL={url}\nCATG_WAIT_MS=0")
PY
env | grep -E '^AWS_' >>"$work/resources.env"
set -a; source "$work/resources.env"; set +a
upload() {  # local-file key
  "$py" -c "import sys, boto3; boto3.client('s3').upload_file(sys.argv[1], '$CATG_SOURCE_BUCKET', sys.argv[2])" "$1" "$2"
}
upload samples/chelsea.png 'cats/chelsea the cat.png'
# An iPhone-style HEIC (512-pixel tiles, irot and EXIF orientation, Display P3): what phones upload.
upload tests/fixtures/iphone-style.heic 'phone/IMG_0001.HEIC'

port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cargo lambda watch --only-lambda-apis -A 127.0.0.1 -P "$port" >"$work/watch.log" 2>&1 &
watch_pid=$!
# A function that cannot start leaves an invocation waiting forever: fail instead.
invoke() {  # function payload-file
  timeout 120 cargo lambda invoke "$1" --invoke-address 127.0.0.1 --invoke-port "$port" --data-file "$2" --output-format json
}
# The resolver streams its responses (InvokeMode RESPONSE_STREAM), which `cargo lambda invoke`
# cannot parse: post to the emulator's Invoke API directly; it answers with the streamed
# response as plain HTTP (status line, the function's headers, the body).
invoke_streaming() {  # function payload-file
  curl -sS --max-time 120 -i -X POST --data-binary "@$2" "http://127.0.0.1:$port/2015-03-31/functions/$1/invocations"
}
fail() { echo "lambda smoke: $*" >&2; tail -n 20 "$work"/*.log >&2; exit 1; }

echo "== ingest" >&2
# As the deployed stack delivers it: S3's event (key URL-encoded) as the body of a message on
# the ingest queue.
notification() {  # encoded-key output-file
  jq --arg b "$CATG_SOURCE_BUCKET" --arg k "$1" '.Records[0].s3.bucket.name = $b | .Records[0].s3.object.key = $k' events/s3-put.json >"$work/put.json"
  jq --arg body "$(jq -c . "$work/put.json")" '.Records[0].body = $body' events/sqs-s3-notification.json >"$2"
}
notification "cats/chelsea+the+cat.png" "$work/notification.json"
for _ in $(seq 300); do
  kill -0 "$watch_pid" 2>/dev/null || fail "cargo lambda watch exited"
  "$py" -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && break
  sleep 0.5
done
# Each function polls its own path of the emulator, as cargo-lambda arranges when it runs them.
for function in ingest resolver transform reconcile; do
  env AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$port/.rt/$function" AWS_LAMBDA_FUNCTION_NAME="$function" \
    AWS_LAMBDA_FUNCTION_VERSION=1 AWS_LAMBDA_FUNCTION_MEMORY_SIZE=2048 \
    "$bin_dir/$function" >"$work/$function.log" 2>&1 &
  function_pids+=($!)
done
ingest() {  # notification-file
  invoke ingest "$1" >"$work/ingest.out" 2>&1 || fail "ingest: $(cat "$work/ingest.out")"
  jq -e '.batchItemFailures == []' "$work/ingest.out" >/dev/null || fail "ingest: $(cat "$work/ingest.out")"
}
ingest "$work/notification.json"

echo "== resolver (miss)" >&2
jq '.rawPath = "/cats/chelsea%20the%20cat.png" | .requestContext.http.path = .rawPath | .rawQueryString = "w=120&fmt=webp"' events/function-url-get.json >"$work/get.json"
invoke_streaming resolver "$work/get.json" >"$work/miss.out" 2>&1 || fail "resolver: $(cat "$work/miss.out")"
# The event carries a browser's Accept: the 202 is a placeholder image; an API client gets JSON.
grep -aq "^HTTP/1.1 202" "$work/miss.out" && grep -aqi "^content-type: image/webp" "$work/miss.out" ||
  fail "expected a 202 with a WebP placeholder: $(head -c 400 "$work/miss.out")"
jq '.headers.accept = "application/json"' "$work/get.json" >"$work/get-api.json"
invoke_streaming resolver "$work/get-api.json" >"$work/miss-api.out" 2>&1 || fail "resolver: $(cat "$work/miss-api.out")"
grep -aq "^HTTP/1.1 202" "$work/miss-api.out" && grep -aq '"status":"pending"' "$work/miss-api.out" ||
  fail "expected a 202 with JSON: $(head -c 400 "$work/miss-api.out")"

echo "== transform" >&2
# The queued job, received from the queue, as the event source mapping hands it over.
transform() {
  "$py" - >"$work/sqs.json" <<PY
import json, boto3
m = boto3.client("sqs").receive_message(QueueUrl="$CATG_QUEUE_URL", MaxNumberOfMessages=1, WaitTimeSeconds=2)["Messages"][0]
event = json.load(open("events/sqs-batch.json"))
event["Records"][0].update(messageId=m["MessageId"], receiptHandle=m["ReceiptHandle"], body=m["Body"])
print(json.dumps(event))
PY
  invoke transform "$work/sqs.json" >"$work/transform.out" 2>&1 || fail "transform: $(cat "$work/transform.out")"
  jq -e '.batchItemFailures == []' "$work/transform.out" >/dev/null || fail "transform: $(cat "$work/transform.out")"
}
transform

echo "== resolver (hit)" >&2
invoke_streaming resolver "$work/get.json" >"$work/hit.out" 2>&1 || fail "resolver: $(cat "$work/hit.out")"
grep -aq "^HTTP/1.1 200" "$work/hit.out" && grep -aqi '^content-type: image/webp' "$work/hit.out" && grep -aq 'WEBPVP8' "$work/hit.out" \
  || fail "expected the WebP: $(head -c 600 "$work/hit.out" | tr -c "[:print:]\n" .)"
echo "== HEIC: ingest, resolver, transform, resolver" >&2
notification "phone/IMG_0001.HEIC" "$work/notification-heic.json"
ingest "$work/notification-heic.json"
jq '.rawPath = "/phone/IMG_0001.HEIC" | .requestContext.http.path = .rawPath | .rawQueryString = "w=240&fmt=jpeg" | .headers.accept = "application/json"' \
  events/function-url-get.json >"$work/get-heic.json"
invoke_streaming resolver "$work/get-heic.json" >"$work/heic-miss.out" 2>&1 || fail "resolver: $(cat "$work/heic-miss.out")"
grep -aq "^HTTP/1.1 202" "$work/heic-miss.out" || fail "HEIC: expected a 202: $(head -c 400 "$work/heic-miss.out")"
transform
invoke_streaming resolver "$work/get-heic.json" >"$work/heic-hit.out" 2>&1 || fail "resolver: $(cat "$work/heic-hit.out")"
# Upright: the stored picture is landscape (1280x960), irot turns it to portrait.
"$py" - "$work/heic-hit.out" <<'PY' || fail "HEIC: $(head -c 600 "$work/heic-hit.out" | tr -c "[:print:]\n" .)"
import sys
response = open(sys.argv[1], "rb").read()
head, _, body = response.partition(b"\r\n\r\n")
assert head.startswith(b"HTTP/1.1 200") and b"content-type: image/jpeg" in head.lower(), head[:300]
at = 2
while body[at] == 0xFF and body[at + 1] not in (0xC0, 0xC1, 0xC2):
    at += 2 + int.from_bytes(body[at + 2:at + 4], "big")
height, width = int.from_bytes(body[at + 5:at + 7], "big"), int.from_bytes(body[at + 7:at + 9], "big")
assert (width, height) == (240, 320), f"the HEIC variant is {width}x{height}, not 240x320 (upright)"
PY

echo "== reconcile (scheduled)" >&2
invoke reconcile events/scheduled.json >"$work/reconcile.out" 2>&1 || fail "reconcile: $(cat "$work/reconcile.out")"
jq -e '.complete == true and .dry_run == false and .variants_checked == 2 and .orphan_objects == 0' "$work/reconcile.out" >/dev/null \
  || fail "reconcile: $(cat "$work/reconcile.out")"
echo "lambda smoke: ingest (from the ingest queue), resolver (202 with a placeholder or JSON, then 200 image/webp), transform and reconcile answered through the Runtime API; an iPhone-style HEIC rendered upright" >&2
