"""Proof that tests/template_test.py can fail: each mutation below breaks one property of
template.yaml (or of a source file the checks read beside it) the way a careless edit would,
and the checks must reject it, naming it.

Run by infra/check-template.sh after the checks pass on the real template:

    python tests/template_mutations.py template.yaml
"""

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from cfnlint.decode import decode
from samtranslator.translator.transform import transform

ROOT = Path(__file__).resolve().parent.parent

# (what breaks, text in template.yaml, its replacement, words the failure must contain)
MUTATIONS = [
    ("the edge lets a parameter it does not know through",
     "            if (KNOWN.indexOf(names[i]) < 0) {", "            if (KNOWN.indexOf(names[i]) < -1) {", "unknown parameter"),
    ("the edge forgets a recipe parameter",
     "'bg', 'frames', 'progressive', 'preset', 'sig', 'info'];", "'bg', 'frames', 'preset', 'sig', 'info'];", "edge query"),
    ("the edge forgets the info URL's parameter",
     "'bg', 'frames', 'progressive', 'preset', 'sig', 'info'];", "'bg', 'frames', 'progressive', 'preset', 'sig'];", "edge query"),
    ("the resolver never learns a request is an <img>",
     "HeadersConfig: { HeaderBehavior: whitelist, Headers: [Sec-Fetch-Dest] }", "HeadersConfig: { HeaderBehavior: none }",
     "Sec-Fetch-Dest"),
    ("the edge keeps the query's own order",
     "          names.sort();\n", "", "edge query"),
    ("the cache key back to a whitelist",
     "            QueryStringBehavior: all",
     "            QueryStringBehavior: whitelist\n            QueryStrings: [w, h, fit, fmt, q, enlarge, g, fp, rot, sig]",
     "cache key query strings"),
    ("alarm topic on the AWS-managed SNS key",
     "KmsMasterKeyId: !GetAtt AlarmTopicKey.Arn", "KmsMasterKeyId: alias/aws/sns", "alarm topic's key"),
    ("CloudWatch left out of the key policy",
     "Principal: { Service: cloudwatch.amazonaws.com }", "Principal: { Service: events.amazonaws.com }",
     "CloudWatch may not use the key"),
    ("signing keys back in the environment",
     "          CATG_SIGNING_KEYS_SECRET: !Ref SigningKeysSecretArn",
     "          CATG_SIGNING_KEYS_SECRET: !Ref SigningKeysSecretArn\n          CATG_SIGNING_KEYS: !Ref AllowedSizes",
     "CATG_SIGNING_KEYS in the environment"),
    ("the resolver may read every secret",
     "                  Resource: !Ref SigningKeysSecretArn",
     "                  Resource: !Sub arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:*",
     "ResolverRole with"),
    ("the output-pixel cap not passed to the transform",
     "          CATG_MAX_OUTPUT_PIXELS: !Ref MaxOutputPixels\n          CATG_ALLOWED_SIZES", "          CATG_ALLOWED_SIZES",
     "TransformFunction: CATG_MAX_OUTPUT_PIXELS"),
    ("pre-warm jobs queued with the viewers'",
     "          CATG_PREWARM_QUEUE_URL: !Ref PrewarmQueue", "          CATG_PREWARM_QUEUE_URL: !Ref JobQueue",
     "pre-warm jobs are queued with the viewers' jobs"),
    ("pre-warm renders without their own cap",
     "        MaximumConcurrency: !Ref PrewarmMaxConcurrency", "        MaximumConcurrency: !Ref TransformMaxConcurrency",
     "TransformFunction's concurrency is not capped by PrewarmMaxConcurrency"),
    ("a cost default that differs from the code's",
     "    Default: 1000\n    MinValue: 1\n    Description: Cost control", "    Default: 100000\n    MinValue: 1\n    Description: Cost control",
     "MaxPendingJobs defaults to 100000"),
    ("no alarm on the job queue's backlog",
     "      Dimensions: [{ Name: QueueName, Value: !GetAtt JobQueue.QueueName }]\n      Statistic: Maximum\n      Period: 300\n      EvaluationPeriods: 1\n      Threshold: !Ref QueueAgeAlarmSeconds",
     "      Dimensions: [{ Name: QueueName, Value: !GetAtt JobDeadLetterQueue.QueueName }]\n      Statistic: Maximum\n      Period: 300\n      EvaluationPeriods: 1\n      Threshold: !Ref QueueAgeAlarmSeconds",
     "queue age alarms on"),
    ("a ratio alarm without a minimum request count",
     "Expression: !Sub IF(requests >= ${AlarmMinRequests}, 100 * errors / requests, 0)\n          Label: resolver 4xx %",
     "Expression: IF(requests > 0, 100 * errors / requests, 0)\n          Label: resolver 4xx %",
     "fires on a handful of requests"),
    ("reconcile reserving concurrency unconditionally",
     "ReservedConcurrentExecutions: !If [HasReconcileReservation, !Ref ReconcileReservedConcurrency, !Ref AWS::NoValue]",
     "ReservedConcurrentExecutions: 1", "reserves concurrency by default"),
    ("MaxReceiveCount back to 3",
     "    Default: 5\n    MinValue: 5", "    Default: 3\n    MinValue: 1", "MaxReceiveCount"),
    ("origin timeout not tied to the resolver's",
     "OriginReadTimeout: !Ref ResolverTimeout", "OriginReadTimeout: 30", "origin read timeout"),
    ("ingest concurrency unbounded",
     "        MaximumConcurrency: !Ref IngestMaxConcurrency", "        MaximumConcurrency: !Ref TransformMaxConcurrency",
     "IngestFunction's concurrency is not capped"),
    ("a dead-letter queue deleted with the stack",
     "  JobDeadLetterQueue:\n    Type: AWS::SQS::Queue\n    DeletionPolicy: Retain",
     "  JobDeadLetterQueue:\n    Type: AWS::SQS::Queue\n    DeletionPolicy: Delete", "JobDeadLetterQueue is deleted"),
    ("a log group deleted with the stack",
     "  ResolverLogGroup:\n    Type: AWS::Logs::LogGroup\n    DeletionPolicy: Retain",
     "  ResolverLogGroup:\n    Type: AWS::Logs::LogGroup\n    DeletionPolicy: Delete", "ResolverLogGroup is deleted"),
    ("a CloudFront Function named after the stack",
     "      Name: !Sub\n        - ${NamePrefix}-normalise-${StackUuid}\n        - StackUuid: !Select [2, !Split [\"/\", !Ref AWS::StackId]]",
     "      Name: !Sub ${AWS::StackName}-normalise", "EdgeNormaliser: its name can be"),
    ("S3 invoking ingest directly again",
     "        QueueConfigurations:\n          - Event: s3:ObjectCreated:*\n            Queue: !GetAtt IngestQueue.Arn",
     "        LambdaConfigurations:\n          - Event: s3:ObjectCreated:*\n            Function: !GetAtt IngestFunction.Arn",
     "S3 invokes a function directly"),
]

# The same, in the sources the checks read beside the template: (what, file, text, replacement,
# words the failure must contain).
SOURCE_MUTATIONS = [
    ("/healthz not cacheable at the edge", "crates/catg-http/src/lib.rs",
     'HEALTH_CACHE_CONTROL: &str = "public, max-age=10"', 'HEALTH_CACHE_CONTROL: &str = "no-store"',
     "/healthz is not briefly cacheable"),
    ("build and deploy reading different architectures", "infra/samconfig.toml",
     'parameter_overrides = "Architecture=x86_64"', 'parameter_overrides = ""', "do not set Architecture"),
    ("a build that does not pin its architecture", "infra/sam-build.sh",
     '"$tools/sam/bin/python" infra/pin_architecture.py', "true", "does not pin the architecture"),
]


def translate(path, out):
    template, matches = decode(str(path))
    if matches:
        raise SystemExit(f"cannot parse the mutated template: {matches}")
    template = json.loads(json.dumps(template))
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://catg-artifacts/code.zip"

    class NoManagedPolicies:
        def load(self):
            return {}

    out.write_text(json.dumps(transform(template, {}, NoManagedPolicies())))


def main(template_path):
    logging.disable(logging.WARNING)  # samtranslator's metrics chatter
    original = Path(template_path).read_text()
    missed = []
    with tempfile.TemporaryDirectory() as work:
        for what, old, new, expect in MUTATIONS:
            if original.count(old) != 1:
                missed.append(f"{what}: the text to mutate occurs {original.count(old)} times (update the mutation)")
                continue
            mutated, translated = Path(work, "template.yaml"), Path(work, "translated.json")
            mutated.write_text(original.replace(old, new))
            translate(mutated, translated)
            run = subprocess.run([sys.executable, str(ROOT / "tests/template_test.py"), str(mutated), str(translated)],
                                 capture_output=True, text=True)
            if run.returncode == 0 or expect not in run.stderr:
                missed.append(f"{what}: not caught (exit {run.returncode}; wanted a failure naming {expect!r})\n{run.stderr}")
        translated = Path(work, "translated.json")
        translate(Path(template_path), translated)
        for what, path, old, new, expect in SOURCE_MUTATIONS:
            root = Path(work, "repo")
            shutil.rmtree(root, ignore_errors=True)
            for folder in ["crates", "infra"]:
                shutil.copytree(ROOT / folder, root / folder, ignore=shutil.ignore_patterns("target", "tools"))
            text = (root / path).read_text()
            if text.count(old) != 1:
                missed.append(f"{what}: the text to mutate occurs {text.count(old)} times in {path} (update the mutation)")
                continue
            (root / path).write_text(text.replace(old, new))
            run = subprocess.run([sys.executable, str(ROOT / "tests/template_test.py"), template_path, str(translated)],
                                 capture_output=True, text=True, env={**os.environ, "CATG_REPO_ROOT": str(root)})
            if run.returncode == 0 or expect not in run.stderr:
                missed.append(f"{what}: not caught (exit {run.returncode}; wanted a failure naming {expect!r})\n{run.stderr}")
    if missed:
        print("template mutations the checks did not catch:", file=sys.stderr)
        for m in missed:
            print(f"  - {m}", file=sys.stderr)
        sys.exit(1)
    print(f"template mutations: all {len(MUTATIONS) + len(SOURCE_MUTATIONS)} caught by tests/template_test.py", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1])
