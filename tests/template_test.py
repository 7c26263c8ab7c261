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
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from cfnlint.decode import decode

# CATG_REPO_ROOT: a copy of the sources with one file broken (tests/template_mutations.py).
ROOT = Path(os.environ.get("CATG_REPO_ROOT") or Path(__file__).resolve().parent.parent)
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


def evaluate(value, template, overrides):
    """`value` with every Fn::If resolved as CloudFormation would for these parameter values
    (defaults otherwise); AWS::NoValue entries disappear."""
    params = {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()}
    params.update({k: str(v) for k, v in overrides.items()})

    def condition(c):
        if isinstance(c, dict) and "Condition" in c:
            return condition(template["Conditions"][c["Condition"]])
        (op, args), = c.items()
        if op == "Fn::Equals":
            a, b = (params[x["Ref"]] if isinstance(x, dict) else str(x) for x in args)
            return a == b
        if op == "Fn::Not":
            return not condition(args[0])
        if op == "Fn::And":
            return all(condition(a) for a in args)
        if op == "Fn::Or":
            return any(condition(a) for a in args)
        raise ValueError(f"condition {c}")

    no_value = object()

    def walk(v):
        if isinstance(v, dict):
            if set(v) == {"Fn::If"}:
                name, yes, no = v["Fn::If"]
                return walk(yes if condition(template["Conditions"][name]) else no)
            if v == {"Ref": "AWS::NoValue"}:
                return no_value
            out = {k: walk(x) for k, x in v.items()}
            return {k: x for k, x in out.items() if x is not no_value}
        if isinstance(v, list):
            return [x for x in (walk(x) for x in v) if x is not no_value]
        return v

    return walk(value)


def longest_sub(value, template):
    """The longest string a Fn::Sub name can become: the stack name at CloudFormation's 128
    characters, each parameter at its longest allowed value, the stack's id as a UUID."""
    if isinstance(value, str):
        return len(value)
    text, variables = (value["Fn::Sub"], {}) if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"]
    lengths = {"AWS::StackName": 128, "AWS::Region": 14, "AWS::AccountId": 12, "AWS::Partition": 10}
    for name, p in template["Parameters"].items():
        pattern = p.get("AllowedPattern", "")
        bound = re.search(r"\{0,(\d+)\}\$$", pattern)
        lengths[name] = 1 + int(bound.group(1)) if bound else 10_000
    for name in variables:
        lengths[name] = 36  # the stack id's UUID, the only Sub variable these names use
    return len(re.sub(r"\$\{[^}]+\}", "", text)) + sum(lengths[m] for m in re.findall(r"\$\{([^}]+)\}", text))


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


def info_parameter():
    return re.search(r'pub const INFO_PARAM: &str = "([a-z]+)"',
                     (ROOT / "crates/catg-core/src/info.rs").read_text()).group(1)


def config_variables():
    names = set()
    for path in ["crates/catg-aws/src/deployment.rs", "crates/catg-lambda/src/lib.rs", "crates/catg-core/src/config.rs"]:
        names.update(re.findall(r'"(CATG_[A-Z_]+)"', (ROOT / path).read_text()))
    return names


def main(template_path, translated_path):
    raw, matches = decode(template_path)
    if matches:
        sys.exit(f"cannot parse {template_path}: {matches}")
    translated = json.loads(Path(translated_path).read_text())
    # What CloudFormation creates with the default parameters; checks of other values evaluate
    # `translated` with overrides.
    cfn = evaluate(translated, translated, {})

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
    notifying = buckets["SourceBucket"]["Properties"]["NotificationConfiguration"]
    check("LambdaConfigurations" not in notifying,
          "S3 invokes a function directly: a bulk upload would run ingest at any concurrency")
    notifications = notifying.get("QueueConfigurations", [])
    events = {n["Event"] for n in notifications if refs(n["Queue"]) == {"IngestQueue"}}
    check(events == {"s3:ObjectCreated:*", "s3:ObjectRemoved:*"}, f"SourceBucket notifies the ingest queue of {events}")
    prefixed = evaluate(translated["Resources"]["SourceBucket"]["Properties"]["NotificationConfiguration"],
                        translated, {"SourcePrefix": "images/"}).get("QueueConfigurations", [])
    check(prefixed and all("SourcePrefix" in refs(n.get("Filter", {})) for n in prefixed),
          "SourceBucket notifications ignore SourcePrefix")
    check("IngestQueuePolicy" in (buckets["SourceBucket"].get("DependsOn") or []),
          "the bucket's notification may be set before S3 is allowed to send to the queue")

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
    visibility = raw["Mappings"]["FunctionTimeouts"]
    receives = raw["Parameters"]["MaxReceiveCount"]
    check(int(receives["Default"]) >= 5 and int(receives.get("MinValue", 0)) >= 5,
          f"MaxReceiveCount {receives}: Lambda's guidance for SQS sources is at least 5")
    feeds = {"JobQueue": ("JobDeadLetterQueue", "TransformFunction", "TransformTimeout", "TransformMaxConcurrency"),
             "PrewarmQueue": ("JobDeadLetterQueue", "TransformFunction", "TransformTimeout", "PrewarmMaxConcurrency"),
             "IngestQueue": ("IngestDeadLetterQueue", "IngestFunction", "IngestTimeout", "IngestMaxConcurrency")}
    mappings = resources_of(cfn, "AWS::Lambda::EventSourceMapping")
    check(len(mappings) == len(feeds), f"event source mappings: {sorted(mappings)}")
    for queue, (dlq, function, timeout, concurrency) in feeds.items():
        redrive = queues[queue]["Properties"].get("RedrivePolicy", {})
        check(refs(redrive.get("deadLetterTargetArn")) == {dlq}, f"{queue} redrive {redrive}")
        check(refs(redrive.get("maxReceiveCount")) == {"MaxReceiveCount"}, f"{queue}: redrive count is not the parameter")
        for allowed in raw["Parameters"][timeout]["AllowedValues"]:
            check(visibility.get(allowed, {}).get("QueueVisibility", 0) >= 6 * int(allowed),
                  f"visibility for a {allowed} s {function} is under six times it")
        check(queues[queue]["Properties"]["VisibilityTimeout"]
              == {"Fn::FindInMap": ["FunctionTimeouts", {"Ref": timeout}, "QueueVisibility"]},
              f"{queue} visibility does not follow {timeout}")
        fed = [m["Properties"] for m in mappings.values() if refs(m["Properties"]["EventSourceArn"]) == {queue}]
        if not check(len(fed) == 1 and refs(fed[0]["FunctionName"]) == {function}, f"{queue} does not feed {function}"):
            continue
        check(fed[0].get("FunctionResponseTypes") == ["ReportBatchItemFailures"], f"{queue}: no partial batch failures")
        check(refs(fed[0].get("ScalingConfig", {}).get("MaximumConcurrency")) == {concurrency},
              f"{function}'s concurrency is not capped by {concurrency}")
        check(queues[dlq].get("DeletionPolicy") == "Retain", f"{dlq} is deleted with the stack, and its messages with it")
    policies = [p["Properties"] for p in resources_of(cfn, "AWS::SQS::QueuePolicy").values()]
    check(len(policies) == 1 and refs(policies[0]["Queues"]) == {"IngestQueue"}, f"queue policies: {policies}")
    for policy in policies:
        for st in policy["PolicyDocument"]["Statement"]:
            check(st["Principal"] == {"Service": "s3.amazonaws.com"} and st["Action"] == "sqs:SendMessage"
                  and "aws:SourceArn" in st.get("Condition", {}).get("ArnEquals", {})
                  and "aws:SourceAccount" in st.get("Condition", {}).get("StringEquals", {}),
                  f"the ingest queue takes messages from more than this stack's source bucket: {st}")

    # ---------------------------------------------------------------- functions and IAM
    functions = resources_of(cfn, "AWS::Lambda::Function")
    check(set(functions) == {"IngestFunction", "ResolverFunction", "TransformFunction", "ReconcileFunction"},
          f"functions {sorted(functions)}")
    variables = config_variables()
    environment = {name: f["Properties"].get("Environment", {}).get("Variables", {}) for name, f in functions.items()}
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
    # Reserving concurrency fails CreateFunction in accounts with < 101 unreserved: off by default.
    check("ReservedConcurrentExecutions" not in reconcile,
          "reconcile reserves concurrency by default (fails in new accounts)")
    reserving = translated["Resources"]["ReconcileFunction"]["Properties"]
    check(evaluate(reserving, translated, {"ReconcileReservedConcurrency": 1}).get("ReservedConcurrentExecutions")
          == {"Ref": "ReconcileReservedConcurrency"}, "ReconcileReservedConcurrency=1 does not reserve")
    check(all("ReservedConcurrentExecutions" not in f["Properties"] for n, f in functions.items() if n != "ReconcileFunction"),
          "a function reserves concurrency")
    check(reconcile.get("Timeout") == 900, "reconcile has less than Lambda's 15 minutes")
    events_permissions = [p["Properties"] for p in resources_of(cfn, "AWS::Lambda::Permission").values()
                          if p["Properties"]["Principal"] == "events.amazonaws.com"]
    check(len(events_permissions) == 1 and refs(events_permissions[0]["SourceArn"]) == set(rules),
          "EventBridge may invoke the function from any rule")
    check(not any(p["Properties"]["Principal"] == "s3.amazonaws.com"
                  for p in resources_of(cfn, "AWS::Lambda::Permission").values()),
          "S3 may invoke a function directly")

    # Logs are evidence: kept after `sam delete`, named so that a new stack of the same name
    # does not collide with the kept ones.
    for name, group in resources_of(cfn, "AWS::Logs::LogGroup").items():
        check(group.get("DeletionPolicy") == "Retain", f"{name} is deleted with the stack")
        check("AWS::StackId" in refs(group["Properties"].get("LogGroupName")),
              f"{name}: a kept log group named without the stack's id blocks a new stack of the same name")

    # Cost controls: template parameters, defaults equal to the code's, reaching the functions
    # that enforce them.
    limits = (ROOT / "crates/catg-image/src/limits.rs").read_text()
    resolve = (ROOT / "crates/catg-core/src/resolve.rs").read_text()
    code_default = {
        "MaxOutputPixels": re.search(r"max_output_pixels: ([0-9_]+),", limits).group(1).replace("_", ""),
        "MaxPendingJobs": re.search(r"max_pending_jobs: ([0-9_]+),", resolve).group(1).replace("_", ""),
        "MaxPendingPerImage": re.search(r"max_pending_per_asset: ([0-9_]+),", resolve).group(1).replace("_", ""),
        "AllowedSizes": "",
        "PrewarmPerImage": re.search(r"per_asset: ([0-9_]+),",
                                     (ROOT / "crates/catg-core/src/prewarm.rs").read_text()).group(1),
        "Presets": "",
        "PresetsOnly": "0",
        "PresetsMix": "0",
    }
    controls = {"AllowedSizes": ("CATG_ALLOWED_SIZES", ["ResolverFunction", "TransformFunction"]),
                "PrewarmPerImage": ("CATG_PREWARM_PER_ASSET", ["TransformFunction"]),
                "MaxOutputPixels": ("CATG_MAX_OUTPUT_PIXELS", ["ResolverFunction", "TransformFunction"]),
                "MaxPendingJobs": ("CATG_MAX_PENDING_JOBS", ["ResolverFunction"]),
                "MaxPendingPerImage": ("CATG_MAX_PENDING_PER_ASSET", ["ResolverFunction"]),
                "Presets": ("CATG_PRESETS", ["ResolverFunction"]),
                "PresetsOnly": ("CATG_PRESETS_ONLY", ["ResolverFunction"]),
                "PresetsMix": ("CATG_PRESETS_MIX", ["ResolverFunction"])}
    for parameter, (variable, readers) in controls.items():
        default = str(raw["Parameters"].get(parameter, {}).get("Default"))
        check(default == code_default[parameter], f"{parameter} defaults to {default}, the code to {code_default[parameter]}")
        for reader in readers:
            check(refs(environment[reader].get(variable)) == {parameter}, f"{reader}: {variable} is not {parameter}")

    # Guesses go to their own queue, never the viewers': a pre-warm job must not wait in front of
    # a viewer's render.
    check(refs(environment["TransformFunction"].get("CATG_PREWARM_QUEUE_URL")) == {"PrewarmQueue"}
          and refs(environment["ResolverFunction"].get("CATG_QUEUE_URL")) == {"JobQueue"},
          "pre-warm jobs are queued with the viewers' jobs")

    # Signing keys: never a value in any function's configuration, only the secret's ARN; the
    # resolver may read that one secret, and nothing else may read any.
    for name, variables in environment.items():
        for var, value in variables.items():
            check("SIGNING_KEYS" not in var or var == "CATG_SIGNING_KEYS_SECRET", f"{name}: {var} in the environment")
            check(not any(raw["Parameters"].get(r, {}).get("NoEcho") for r in refs(value)),
                  f"{name}: {var} carries a NoEcho (secret) parameter in plain sight")
    check(refs(environment["ResolverFunction"].get("CATG_SIGNING_KEYS_SECRET")) == {"SigningKeysSecretArn"},
          "the resolver is not given the signing secret's ARN")

    def grants(role, overrides):
        out = []
        for policy in evaluate(translated["Resources"][role]["Properties"]["Policies"], translated, overrides):
            for st in policy["PolicyDocument"]["Statement"]:
                actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
                out += [(a, json.dumps(st["Resource"], sort_keys=True)) for a in actions]
        return out

    secret = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:catg/signing-AbCdEf"
    for role in resources_of(cfn, "AWS::IAM::Role"):
        for overrides in ({}, {"SigningKeysSecretArn": secret}):
            reads = [(a, r) for a, r in grants(role, overrides) if a.startswith("secretsmanager:")]
            want = ([("secretsmanager:GetSecretValue", json.dumps({"Ref": "SigningKeysSecretArn"}))]
                    if role == "ResolverRole" and overrides else [])
            check(reads == want, f"{role} with {overrides or 'signing off'} may {reads}, want {want}")

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
    # CloudFront waits exactly as long as the resolver may run; a miss's wait ends well before.
    timeout = raw["Parameters"]["ResolverTimeout"]
    check(origin["CustomOriginConfig"].get("OriginReadTimeout") == {"Ref": "ResolverTimeout"},
          f"origin read timeout {origin['CustomOriginConfig'].get('OriginReadTimeout')} is not ResolverTimeout")
    check(int(timeout["MaxValue"]) <= 60, "ResolverTimeout may exceed CloudFront's 60 s origin timeout")
    check(int(raw["Parameters"]["ResolverWaitMs"]["MaxValue"]) + 2000 <= 1000 * int(timeout["MinValue"]),
          "ResolverWaitMs can outlast ResolverTimeout")
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
    # Every query string is in the key: the edge function refuses unknown names and orders the
    # rest (checked under Node below), which scales past the 10 names a whitelist may hold.
    check(key["QueryStringsConfig"]["QueryStringBehavior"] == "all",
          f"cache key query strings {key['QueryStringsConfig']}: want all (the edge function filters and orders them)")
    # /healthz is public behind CloudFront: the origin's short max-age must be honoured (MinTTL 0)
    # and be above zero, so that an edge does not call the function for each check.
    health = re.search(r'HEALTH_CACHE_CONTROL: &str = "([^"]+)"', (ROOT / "crates/catg-http/src/lib.rs").read_text())
    max_age = re.search(r"max-age=(\d+)", health.group(1) if health else "")
    check(cache["Properties"]["CachePolicyConfig"]["MinTTL"] == 0 and max_age and 0 < int(max_age.group(1)) <= 60,
          f"/healthz is not briefly cacheable at the edge: {health and health.group(1)}")
    check(key["HeadersConfig"] == {"HeaderBehavior": "whitelist", "Headers": ["Accept"]}, f"headers {key['HeadersConfig']}")
    check(key["CookiesConfig"] == {"CookieBehavior": "none"}, "cookies in the cache key")
    check(not key["EnableAcceptEncodingGzip"] and not key["EnableAcceptEncodingBrotli"], "encodings split the cache")
    orp = resources_of(cfn, "AWS::CloudFront::OriginRequestPolicy")[behaviour["OriginRequestPolicyId"]["Ref"]]
    headers = orp["Properties"]["OriginRequestPolicyConfig"]["HeadersConfig"]
    forwarded = [h.lower() for h in headers.get("Headers", [])]
    check(headers["HeaderBehavior"] in ("none", "whitelist") and "host" not in forwarded,
          f"the origin request policy may forward Host: {headers}")
    # A waiting <img> gets a placeholder image only if the resolver learns it is one.
    check("sec-fetch-dest" in forwarded, f"the origin request policy does not forward Sec-Fetch-Dest: {headers}")

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
    check({"ApproximateNumberOfMessagesVisible", "Errors", "Url5xxCount", "Url4xxCount", "Throttles",
           "ApproximateAgeOfOldestMessage"} <= watched, f"alarms on {watched}")
    # The backlog: the oldest message's age on both queues, against the parameter.
    aged = {refs(a["Properties"]["Dimensions"]).pop() for a in alarms.values()
            if a["Properties"].get("MetricName") == "ApproximateAgeOfOldestMessage"
            and refs(a["Properties"]["Threshold"]) == {"QueueAgeAlarmSeconds"}}
    check(aged == {"JobQueue", "IngestQueue"}, f"queue age alarms on {aged}")
    # Every ratio waits for a minimum number of requests before it can fire.
    for name, a in alarms.items():
        for m in a["Properties"].get("Metrics", []):
            expression = m.get("Expression")
            text = expression if isinstance(expression, str) else (expression or {}).get("Fn::Sub", "")
            if "/" in text:
                check(re.search(r"IF\(requests >= \$\{AlarmMinRequests\}", text),
                      f"{name}: the ratio {text} fires on a handful of requests")
    ratios = {m["MetricStat"]["Metric"]["MetricName"] for a in alarms.values() for m in a["Properties"].get("Metrics", [])
              if "MetricStat" in m and any("/" in str(x.get("Expression", "")) for x in a["Properties"]["Metrics"])}
    check({"Url4xxCount", "Url5xxCount"} <= ratios, f"ratio alarms on {ratios}")

    # CloudWatch can publish to the alarm topic only through a key whose policy lets it.
    topic = resources_of(cfn, "AWS::SNS::Topic")["AlarmTopic"]["Properties"]
    key_ids = refs(topic.get("KmsMasterKeyId"))
    check(len(key_ids) == 1, f"the alarm topic's key is {topic.get('KmsMasterKeyId')} (CloudWatch cannot use AWS-managed keys)")
    for key_id in key_ids:
        statements = cfn["Resources"][key_id]["Properties"]["KeyPolicy"]["Statement"]
        cloudwatch = [st for st in statements if st.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
        check(cloudwatch and {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(cloudwatch[0]["Action"]),
              f"{key_id}: CloudWatch may not use the key ({cloudwatch})")
        check(cfn["Resources"][key_id]["Properties"].get("EnableKeyRotation") is True, f"{key_id}: no rotation")

    # Names with length limits stay within them for any stack name (up to 128 characters).
    named = {"AWS::CloudFront::Function": ("Name", 64),
             "AWS::CloudFront::OriginAccessControl": ("OriginAccessControlConfig.Name", 64),
             "AWS::CloudFront::CachePolicy": ("CachePolicyConfig.Name", 128),
             "AWS::CloudFront::OriginRequestPolicy": ("OriginRequestPolicyConfig.Name", 128),
             "AWS::CloudFront::ResponseHeadersPolicy": ("ResponseHeadersPolicyConfig.Name", 128),
             "AWS::S3::Bucket": ("BucketName", 63),
             "AWS::CloudWatch::Dashboard": ("DashboardName", 255),
             "AWS::Logs::LogGroup": ("LogGroupName", 512)}
    for kind, (path, limit) in named.items():
        for name, r in resources_of(raw, kind).items():
            value = r["Properties"]
            for part in path.split("."):
                value = value[part]
            longest = longest_sub(json.loads(json.dumps(value)), raw)
            check(longest <= limit, f"{name}: its name can be {longest} characters, over {kind}'s {limit}")

    # The architecture: one value, read by both `sam build` and `sam deploy`; a build is pinned
    # to what it built.
    import tomllib
    samconfig = tomllib.loads((ROOT / "infra/samconfig.toml").read_text())
    overrides = samconfig["default"]["global"]["parameters"].get("parameter_overrides", "")
    check(re.search(r"(^|\s)Architecture=(x86_64|arm64)(\s|$)", overrides),
          f"samconfig.toml's global parameter_overrides do not set Architecture: {overrides!r}")
    sys.path.insert(0, str(ROOT / "infra"))
    from pin_architecture import pin
    pinned = pin(json.loads(json.dumps(raw)), "arm64")["Parameters"]["Architecture"]
    check(pinned["AllowedValues"] == ["arm64"] and pinned["Default"] == "arm64", f"pinned to arm64: {pinned}")
    check("pin_architecture.py" in (ROOT / "infra/sam-build.sh").read_text(), "sam-build.sh does not pin the architecture")
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
        ({}, "image/webp,image/avif,image/jxl,image/heic,video/*;q=0.8,*/*;q=0.5", "image/jxl"),
        ({}, "image/jxl;q=0,image/avif", "image/avif"),
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
    # Every short name (and sig) passes, in one order whatever the order given; any other name
    # is a 400, as the origin would answer.
    known = sorted(set(recipe_parameters()) | {signature_parameter(), info_parameter()})
    check(len(known) >= 11, f"recipe names {known}")
    # (dpr is left out here: it is folded into w, h and pad, as the cases below check.)
    known = [name for name in known if name != "dpr"]
    forwards = {name: {"value": str(i)} for i, name in enumerate(known)}
    backwards = {name: forwards[name] for name in reversed(known)}
    ordered = "&".join(f"{name}={i}" for i, name in enumerate(known))
    repeated = {"w": {"value": "1", "multiValue": [{"value": "1"}, {"value": "2"}]}}
    extra = [(forwards, ordered), (backwards, ordered), (repeated, "w=1&w=2")]
    # dpr is folded into w, h and pad as the parser does (catg-core's recipe tests check that
    # each pair parses to one recipe).
    folds = json.loads((Path(__file__).parent / "edge_dpr_cases.json").read_text())["cases"]
    check(len(folds) >= 10, "tests/edge_dpr_cases.json has too few cases")
    for sent, passed in folds:
        query = {}
        for pair in sent.split("&"):
            name, value = pair.split("=", 1)
            query[name] = {"value": value}
        extra.append((query, passed))
    unknown = ["foo", "W", "width2", "utm_source", "sig2"]
    for query, _ in extra:
        cases.append((query, None, None))
    for name in unknown:
        cases.append(({name: {"value": "1"}, "w": {"value": "4"}}, None, None))
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
    negotiation = len(cases) - 2 * len(aliases) - len(extra) - len(unknown)
    for (query, accept, want), have in zip(cases[:negotiation], got):
        check(have.get("accept") == want, f"Accept normaliser: {query} {accept!r} -> {have!r}, want {want!r}")
    renaming = got[negotiation:negotiation + 2 * len(aliases)]
    for (alias, short), renamed, both in zip(aliases, renaming[0::2], renaming[1::2]):
        check(renamed.get("qs") == "&".join(sorted([f"{short}=7", "sig=s"])),
              f"alias {alias}: {renamed} (want it renamed to {short}, sig kept, in order)")
        check(both.get("status") == 400 and both["body"]["error"]["kind"] == "invalid_recipe",
              f"{alias} and {short} together: {both} (want a 400 invalid_recipe)")
    rest = got[negotiation + 2 * len(aliases):]
    for (query, want), have in zip(extra, rest):
        check(have.get("qs") == want, f"edge query {query} -> {have!r}, want {want!r}")
    for name, have in zip(unknown, rest[len(extra):]):
        check(have.get("status") == 400 and have["body"]["error"]["kind"] == "invalid_recipe",
              f"unknown parameter {name}: {have} (want a 400 invalid_recipe)")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
    if failures:
        print("template checks failed:", file=sys.stderr)
        for f in failures:
            print(f"  - {f}", file=sys.stderr)
        sys.exit(1)
    print("template checks passed: private encrypted TLS-only buckets, OAC (lambda, sigv4) -> AWS_IAM Function URL, "
          "scoped CloudFront permissions, DLQs wired, least-privilege roles, cache key = the recipe query (known names only, one order) + Accept")
