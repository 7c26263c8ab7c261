"""The deployed stack's security and wiring properties, asserted on the template SAM deploys.

Run by infra/check-template.sh (part of scripts/test) with the SAM CLI's Python, which brings
samtranslator and cfn-lint's YAML loader:

    python tests/template_test.py template.yaml TRANSLATED.json

TRANSLATED.json is template.yaml after the SAM transform (what CloudFormation actually creates),
so SAM-generated resources (the Function URL, the functions) are checked too. Every check names
what it found when it fails. The recipe parameters and environment variable names are read from
the Rust sources, so the template cannot drift from the code without failing here.
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parent.parent
failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
    return condition


def resources_of(template, kind):
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def refs(value):
    """Every logical id a (translated, JSON) value refers to via Ref / GetAtt / Sub."""
    found = set()
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "Ref" and isinstance(v, str):
                found.add(v)
            elif k == "Fn::GetAtt":
                found.add(v[0] if isinstance(v, list) else v.split(".")[0])
            elif k == "Fn::Sub":
                text = v if isinstance(v, str) else v[0]
                found.update(m.split(".")[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", text))
                found |= refs(v)
            else:
                found |= refs(v)
    elif isinstance(value, list):
        for v in value:
            found |= refs(v)
    return found


def strings(value):
    """Every literal string inside a value (Sub templates included)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def recipe_parameters():
    """The recipe parser's parameters: {short name: [aliases]}, read from recipe.rs."""
    source = (ROOT / "crates/catg-core/src/recipe.rs").read_text()
    names = {}
    for arm in re.findall(r'^\s*((?:"[a-z]+"\s*\|?\s*)+)=>\s*Param::', source, re.M):
        short, *aliases = re.findall(r'"([a-z]+)"', arm)
        names[short] = aliases
    return names


def signature_parameter():
    return re.search(r'pub const SIG_PARAM: &str = "([a-z]+)"',
                     (ROOT / "crates/catg-core/src/signing.rs").read_text()).group(1)


def config_variables():
    names = set()
    for path in ["crates/catg-lambda/src/lib.rs", "crates/catg-core/src/config.rs"]:
        names.update(re.findall(r'"(CATG_[A-Z_]+)"', (ROOT / path).read_text()))
    return names


def main(template_path, translated_path):
    raw, matches = decode(template_path)
    if matches:
        sys.exit(f"cannot parse {template_path}: {matches}")
    cfn = json.loads(Path(translated_path).read_text())

    # ---------------------------------------------------------------- buckets
    buckets = resources_of(cfn, "AWS::S3::Bucket")
    check(set(buckets) == {"SourceBucket", "VariantsBucket"}, f"buckets: {sorted(buckets)}")
    policies = resources_of(cfn, "AWS::S3::BucketPolicy")
    for name, bucket in buckets.items():
        p = bucket["Properties"]
        block = p.get("PublicAccessBlockConfiguration", {})
        for setting in ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"]:
            check(block.get(setting) is True, f"{name}: {setting} is not on")
        check("AccessControl" not in p, f"{name}: has a canned ACL")
        rules = p.get("OwnershipControls", {}).get("Rules", [])
        check(rules == [{"ObjectOwnership": "BucketOwnerEnforced"}], f"{name}: ownership {rules}")
        sse = p.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
        check(sse and sse[0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms"),
              f"{name}: not encrypted")
        own = [pol for pol in policies.values() if refs(pol["Properties"]["Bucket"]) == {name}]
        check(len(own) == 1, f"{name}: {len(own)} bucket policies")
        for pol in own:
            statements = pol["Properties"]["PolicyDocument"]["Statement"]
            tls = [s for s in statements if s["Effect"] == "Deny"
                   and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"]
            check(tls, f"{name}: no TLS-only deny")
            for s in statements:
                check(not (s["Effect"] == "Allow" and s.get("Principal") in ("*", {"AWS": "*"})),
                      f"{name}: public Allow statement {s}")
    variants = buckets["VariantsBucket"]["Properties"]
    expiry = [r for r in variants.get("LifecycleConfiguration", {}).get("Rules", [])
              if r.get("Status") == "Enabled" and "ExpirationInDays" in r]
    check(expiry and refs(expiry[0]["ExpirationInDays"]) == {"VariantExpiryDays"},
          "VariantsBucket: no lifecycle expiry from the VariantExpiryDays parameter")
    notifications = buckets["SourceBucket"]["Properties"]["NotificationConfiguration"]["LambdaConfigurations"]
    events = {n["Event"] for n in notifications if refs(n["Function"]) == {"IngestFunction"}}
    check(events == {"s3:ObjectCreated:*", "s3:ObjectRemoved:*"}, f"SourceBucket notifies ingest of {events}")
    check(all("SourcePrefix" in refs(n.get("Filter", {})) for n in notifications),
          "SourceBucket notifications ignore SourcePrefix")

    # ---------------------------------------------------------------- table and queues
    table = resources_of(cfn, "AWS::DynamoDB::Table")["ManifestTable"]["Properties"]
    check(table.get("BillingMode") == "PAY_PER_REQUEST", "table is not on-demand")
    check(table.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled") is True, "no PITR")
    ttl = table.get("TimeToLiveSpecification", {})
    code_ttl = re.findall(r'"(expires_at)"', (ROOT / "crates/catg-aws/src/dynamodb.rs").read_text())
    check(ttl.get("Enabled") is True and [ttl.get("AttributeName")] == code_ttl[:1],
          f"TTL {ttl} vs the adapter's {code_ttl[:1]}")
    check(refs(table.get("DeletionProtectionEnabled")) == {"TableDeletionProtection"}, "deletion protection")
    check(table.get("KeySchema") == [{"AttributeName": "pk", "KeyType": "HASH"}], "key schema")
    # The per-image pending cap counts claims in the adapter's sparse index: same name, same key.
    adapter = (ROOT / "crates/catg-aws/src/dynamodb.rs").read_text()
    index_name = re.search(r'PENDING_INDEX: &str = "([^"]+)"', adapter).group(1)
    indexes = {i["IndexName"]: i for i in table.get("GlobalSecondaryIndexes", [])}
    check(index_name in indexes and indexes[index_name]["KeySchema"]
          == [{"AttributeName": "pending_asset", "KeyType": "HASH"}],
          f"the table lacks the adapter's index {index_name} on pending_asset")
    resolver_actions = {
        a for pol in resources_of(cfn, "AWS::IAM::Role")["ResolverRole"]["Properties"]["Policies"]
        for st in pol["PolicyDocument"]["Statement"]
        for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])
    }
    check({"dynamodb:Query", "sqs:GetQueueAttributes"} <= resolver_actions,
          "the resolver cannot count pending jobs (dynamodb:Query on the index, sqs:GetQueueAttributes)")

    queues = resources_of(cfn, "AWS::SQS::Queue")
    for name, q in queues.items():
        check(q["Properties"].get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in q["Properties"],
              f"{name}: not encrypted")
    redrive = queues["JobQueue"]["Properties"].get("RedrivePolicy", {})
    check(refs(redrive.get("deadLetterTargetArn")) == {"JobDeadLetterQueue"}, f"JobQueue redrive {redrive}")
    check(refs(redrive.get("maxReceiveCount")) == {"MaxReceiveCount"}, "redrive count is not the parameter")
    visibility = raw["Mappings"]["TransformTimeouts"]
    allowed = raw["Parameters"]["TransformTimeout"]["AllowedValues"]
    for timeout in allowed:
        check(visibility.get(timeout, {}).get("QueueVisibility", 0) >= 6 * int(timeout),
              f"visibility for a {timeout} s transform is under six times it")
    check(queues["JobQueue"]["Properties"]["VisibilityTimeout"]
          == {"Fn::FindInMap": ["TransformTimeouts", {"Ref": "TransformTimeout"}, "QueueVisibility"]},
          "JobQueue visibility does not follow TransformTimeout")

    mappings = resources_of(cfn, "AWS::Lambda::EventSourceMapping")
    check(len(mappings) == 1, f"event source mappings: {sorted(mappings)}")
    for m in mappings.values():
        p = m["Properties"]
        check(refs(p["FunctionName"]) == {"TransformFunction"} and refs(p["EventSourceArn"]) == {"JobQueue"},
              "the job queue does not feed the transform function")
        check(p.get("FunctionResponseTypes") == ["ReportBatchItemFailures"], "no partial batch failures")
        check("MaximumConcurrency" in p.get("ScalingConfig", {}), "transform concurrency is unbounded")

    # ---------------------------------------------------------------- functions and IAM
    functions = resources_of(cfn, "AWS::Lambda::Function")
    check(set(functions) == {"IngestFunction", "ResolverFunction", "TransformFunction", "ReconcileFunction"},
          f"functions {sorted(functions)}")
    variables = config_variables()
    roles_used = []
    for name, f in functions.items():
        p = f["Properties"]
        check(p.get("Runtime") == "provided.al2023" and p.get("Handler") == "bootstrap", f"{name}: runtime")
        check(p.get("LoggingConfig", {}).get("LogFormat") == "JSON", f"{name}: logs are not JSON")
        check(refs(p.get("Architectures")) == {"Architecture"}, f"{name}: architecture is not the parameter")
        role = refs(p["Role"])
        check(len(role) == 1, f"{name}: role {role}")
        roles_used += list(role)
        for var in p.get("Environment", {}).get("Variables", {}):
            check(var in variables, f"{name}: {var} is not read by the code")
        sam = raw["Resources"][name]["Metadata"]
        check(sam.get("BuildMethod") == "rust-cargolambda", f"{name}: not built with cargo-lambda")
    check(len(set(roles_used)) == 4, f"functions share roles: {roles_used}")
    # Reconcile runs on its schedule, one run at a time, with time to finish its pass.
    rules = resources_of(cfn, "AWS::Events::Rule")
    check([refs(t["Arn"]) for r in rules.values() for t in r["Properties"]["Targets"]] == [{"ReconcileFunction"}],
          "the schedule does not start the reconcile function")
    check(all(refs(r["Properties"]["ScheduleExpression"]) == {"ReconcileSchedule"} for r in rules.values()),
          "the reconcile schedule is not the parameter")
    reconcile = functions["ReconcileFunction"]["Properties"]
    check(reconcile.get("ReservedConcurrentExecutions") == 1, "two reconciles could run at once")
    check(reconcile.get("Timeout") == 900, "reconcile has less than Lambda's 15 minutes")
    events_permissions = [p["Properties"] for p in resources_of(cfn, "AWS::Lambda::Permission").values()
                          if p["Properties"]["Principal"] == "events.amazonaws.com"]
    check(len(events_permissions) == 1 and refs(events_permissions[0]["SourceArn"]) == set(rules),
          "EventBridge may invoke the function from any rule")
    check("DeadLetterConfig" in functions["IngestFunction"]["Properties"], "failed ingest events are dropped")

    for name, role in resources_of(cfn, "AWS::IAM::Role").items():
        p = role["Properties"]
        check(not p.get("ManagedPolicyArns"), f"{name}: managed policies {p.get('ManagedPolicyArns')}")
        for policy in p.get("Policies", []):
            for s in policy["PolicyDocument"]["Statement"]:
                actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
                check(s["Effect"] == "Allow", f"{name}: {s}")
                check(all("*" not in a for a in actions), f"{name}: wildcard action in {actions}")
                resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
                for r in resources:
                    check(r != "*", f"{name}/{s.get('Sid')}: Resource \"*\"")
                    for text in strings(r):
                        check(not re.search(r"(^|:)\*$", text) and ":::*" not in text,
                              f"{name}/{s.get('Sid')}: unscoped resource {text}")

    # ---------------------------------------------------------------- edge
    urls = resources_of(cfn, "AWS::Lambda::Url")
    check(len(urls) == 1, f"function URLs: {sorted(urls)}")
    for name, url in urls.items():
        p = url["Properties"]
        check(p.get("AuthType") == "AWS_IAM", f"{name}: AuthType {p.get('AuthType')}")
        check(p.get("InvokeMode") == "RESPONSE_STREAM", f"{name}: InvokeMode {p.get('InvokeMode')}")
        check(refs(p["TargetFunctionArn"]) == {"ResolverFunction"}, f"{name}: not the resolver")

    oacs = resources_of(cfn, "AWS::CloudFront::OriginAccessControl")
    check(len(oacs) == 1, f"OACs {sorted(oacs)}")
    oac_name, oac = next(iter(oacs.items()))
    c = oac["Properties"]["OriginAccessControlConfig"]
    check((c["OriginAccessControlOriginType"], c["SigningBehavior"], c["SigningProtocol"]) == ("lambda", "always", "sigv4"),
          f"OAC {c}")

    distribution = resources_of(cfn, "AWS::CloudFront::Distribution")["Distribution"]["Properties"]["DistributionConfig"]
    origins = distribution["Origins"]
    check(len(origins) == 1, "one origin")
    origin = origins[0]
    check(refs(origin["OriginAccessControlId"]) == {oac_name}, "the origin is not signed by the OAC")
    check(refs(origin["DomainName"]) == set(urls), "the origin is not the Function URL")
    check(origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only", "origin over plain HTTP")
    behaviour = distribution["DefaultCacheBehavior"]
    check(not distribution.get("CacheBehaviors"), "extra cache behaviours")
    check(behaviour["ViewerProtocolPolicy"] == "https-only", f"viewers: {behaviour['ViewerProtocolPolicy']}")
    check(behaviour.get("Compress") is False, "compression is on for images")
    check(sorted(behaviour["AllowedMethods"]) == ["GET", "HEAD"], f"methods {behaviour['AllowedMethods']}")
    check(distribution.get("HttpVersion") == "http2and3", f"HTTP versions {distribution.get('HttpVersion')}")

    cache = resources_of(cfn, "AWS::CloudFront::CachePolicy")[behaviour["CachePolicyId"]["Ref"]]
    key = cache["Properties"]["CachePolicyConfig"]["ParametersInCacheKeyAndForwardedToOrigin"]
    wanted = set(recipe_parameters()) | {signature_parameter()}
    check(key["QueryStringsConfig"]["QueryStringBehavior"] == "whitelist"
          and set(key["QueryStringsConfig"]["QueryStrings"]) == wanted,
          f"cache key query strings {key['QueryStringsConfig']} vs the recipe's short names + sig {sorted(wanted)}")
    check(len(key["QueryStringsConfig"]["QueryStrings"]) <= 10, "CloudFront allows 10 query strings per cache policy")
    check(key["HeadersConfig"] == {"HeaderBehavior": "whitelist", "Headers": ["Accept"]}, f"headers {key['HeadersConfig']}")
    check(key["CookiesConfig"] == {"CookieBehavior": "none"}, "cookies in the cache key")
    check(not key["EnableAcceptEncodingGzip"] and not key["EnableAcceptEncodingBrotli"], "encodings split the cache")
    orp = resources_of(cfn, "AWS::CloudFront::OriginRequestPolicy")[behaviour["OriginRequestPolicyId"]["Ref"]]
    headers = orp["Properties"]["OriginRequestPolicyConfig"]["HeadersConfig"]
    forwarded = [h.lower() for h in headers.get("Headers", [])]
    check(headers["HeaderBehavior"] in ("none", "whitelist") and "host" not in forwarded,
          f"the origin request policy may forward Host: {headers}")

    permissions = resources_of(cfn, "AWS::Lambda::Permission")
    for name, perm in permissions.items():
        p = perm["Properties"]
        check(p["Principal"] != "*", f"{name}: anyone may invoke")
        check("SourceArn" in p, f"{name}: not scoped by SourceArn")
    cloudfront = {p["Properties"]["Action"]: p["Properties"] for p in permissions.values()
                  if p["Properties"]["Principal"] == "cloudfront.amazonaws.com"}
    check(set(cloudfront) == {"lambda:InvokeFunctionUrl", "lambda:InvokeFunction"},
          f"CloudFront permissions: {sorted(cloudfront)}")
    for action, p in cloudfront.items():
        check(refs(p["SourceArn"]) >= {"Distribution"}, f"{action} is not scoped to the distribution")
        check(refs(p["FunctionName"]) == {"ResolverFunction"}, f"{action} is not on the resolver")
    check(cloudfront.get("lambda:InvokeFunctionUrl", {}).get("FunctionUrlAuthType") == "AWS_IAM", "URL permission auth")
    check(cloudfront.get("lambda:InvokeFunction", {}).get("InvokedViaFunctionUrl") is True,
          "InvokeFunction permission is not limited to Function URL calls")

    # ---------------------------------------------------------------- alarms and outputs
    alarms = resources_of(cfn, "AWS::CloudWatch::Alarm")
    watched = set()
    for a in alarms.values():
        p = a["Properties"]
        watched.add(p.get("MetricName"))
        watched.update(m["MetricStat"]["Metric"]["MetricName"] for m in p.get("Metrics", []) if "MetricStat" in m)
        check(p.get("AlarmActions"), "an alarm without an action")
    check({"ApproximateNumberOfMessagesVisible", "Errors", "Url5xxCount", "Throttles"} <= watched, f"alarms on {watched}")
    check("Dashboard" in cfn["Resources"], "no dashboard")
    check({"DistributionDomain", "SourceBucketName", "VariantsBucketName", "ExampleImageUrl"} <= set(cfn["Outputs"]),
          f"outputs {sorted(cfn['Outputs'])}")

    check_edge_normaliser(raw["Resources"]["EdgeNormaliser"]["Properties"]["FunctionCode"])


def check_edge_normaliser(code):
    """Run the CloudFront Function's code under Node against the negotiation rules and the
    recipe parser's aliases."""
    node = shutil.which("node")
    if not check(node, "node is needed to test the CloudFront Function (apt-get install nodejs)"):
        return
    chrome = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
    safari = "image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5"
    cases = [  # (query, accept, normalised Accept or None)
        ({}, chrome, "image/avif"),
        ({"fmt": {"value": "auto"}}, safari, "image/webp"),
        ({"format": {"value": "AUTO"}}, chrome, "image/avif"),
        ({}, "*/*", None),
        ({}, "image/*", None),
        ({}, None, None),
        ({}, "image/avif;q=0, image/webp", "image/webp"),
        ({}, "IMAGE/AVIF ; q=0.5", "image/avif"),
        ({}, "image/webp;q=0.0", None),
        ({"fmt": {"value": "webp"}}, chrome, None),
        ({"fmt": {"value": "jpeg"}}, safari, None),
    ]
    # Every alias of the recipe parser becomes its short name; both at once is a 400.
    aliases = [(alias, short) for short, names in recipe_parameters().items() for alias in names]
    check(aliases, "no recipe aliases found in recipe.rs")
    for alias, short in aliases:
        cases.append(({alias: {"value": "7"}, "sig": {"value": "s"}}, None, None))
        cases.append(({alias: {"value": "7"}, short: {"value": "8"}}, None, None))
    script = code + """
const cases = JSON.parse(process.argv[1]);
const out = cases.map(([qs, accept]) => {
  const headers = accept === null ? {} : { accept: { value: accept } };
  const r = handler({ request: { method: 'GET', uri: '/a.jpg', querystring: qs, headers } });
  if (r.statusCode) return { status: r.statusCode, body: JSON.parse(r.body.data) };
  return { accept: r.headers.accept ? r.headers.accept.value : null, qs: r.querystring };
});
console.log(JSON.stringify(out));
"""
    result = subprocess.run([node, "-e", script, json.dumps([[q, a] for q, a, _ in cases])],
                            capture_output=True, text=True)
    if not check(result.returncode == 0, f"CloudFront Function failed under node: {result.stderr}"):
        return
    got = json.loads(result.stdout)
    negotiation = len(cases) - 2 * len(aliases)
    for (query, accept, want), have in zip(cases[:negotiation], got):
        check(have.get("accept") == want, f"Accept normaliser: {query} {accept!r} -> {have!r}, want {want!r}")
    for (alias, short), renamed, both in zip(aliases, got[negotiation::2], got[negotiation + 1::2]):
        check(renamed.get("qs") == {short: {"value": "7"}, "sig": {"value": "s"}},
              f"alias {alias}: {renamed} (want it renamed to {short}, sig kept)")
        check(both.get("status") == 400 and both["body"]["error"]["kind"] == "invalid_recipe",
              f"{alias} and {short} together: {both} (want a 400 invalid_recipe)")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
    if failures:
        print("template checks failed:", file=sys.stderr)
        for f in failures:
            print(f"  - {f}", file=sys.stderr)
        sys.exit(1)
    print("template checks passed: private encrypted TLS-only buckets, OAC (lambda, sigv4) -> AWS_IAM Function URL, "
          "scoped CloudFront permissions, DLQs wired, least-privilege roles, cache key = recipe short names + sig + Accept")
