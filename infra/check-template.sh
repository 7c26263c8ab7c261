#!/usr/bin/env bash
# Checks template.yaml the way a careful reviewer would, offline. Run by scripts/test.
#   1. cfn-lint template.yaml
#   2. sam validate --lint
#   3. the SAM transform (samtranslator, offline) and cfn-lint over its output: what
#      CloudFormation really creates, where circular dependencies show up (E3004)
#   4. checkov: every failed check is fixed or suppressed in the template with a written reason
#   5. tests/template_test.py: the security and wiring properties, on the translated template,
#      and tests/template_mutations.py: broken copies of the template that it must reject
#   6. the functions' dependency graph links no system library that provided.al2023 lacks
#      (the full `sam build` is infra/sam-build.sh: a ~11 min release cross-build)
# Installs the SAM CLI (with cfn-lint and samtranslator) and checkov from PyPI into
# $CATG_TOOLS (default target/tools) on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=infra/tools.sh
source infra/tools.sh
template="${1:-template.yaml}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" AWS_REGION="${AWS_REGION:-us-east-1}"
export SAM_CLI_TELEMETRY=0

need_sam
need_checkov
command -v node >/dev/null || { echo "node is needed to test the CloudFront Function: apt-get install nodejs" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== cfn-lint $template" >&2
"$tools/sam/bin/cfn-lint" "$template"

echo "== sam validate --lint" >&2
"$tools/sam/bin/sam" validate --lint --template-file "$template" >"$work/validate.log" 2>&1 \
  || { cat "$work/validate.log" >&2; exit 1; }
grep -q "is a valid SAM Template" "$work/validate.log" || { cat "$work/validate.log" >&2; exit 1; }

echo "== SAM transform + cfn-lint (circular dependencies, generated resources)" >&2
"$tools/sam/bin/python" - "$template" "$work/translated.json" <<'PY'
import json, sys
from cfnlint.decode import decode
from samtranslator.translator.transform import transform

class NoManagedPolicies:
    """Every role in the template is explicit: nothing may need AWS managed policies."""
    def load(self):
        return {}

template, matches = decode(sys.argv[1])
if matches:
    sys.exit(f"cannot parse: {matches}")
template = json.loads(json.dumps(template))
# What `sam package` does before deploying: local code becomes an S3 object.
for resource in template["Resources"].values():
    if resource["Type"] == "AWS::Serverless::Function":
        resource["Properties"]["CodeUri"] = "s3://catg-artifacts/code.zip"
translated = transform(template, {}, NoManagedPolicies())
with open(sys.argv[2], "w") as out:
    json.dump(translated, out, indent=1)
print(f"translated: {len(translated['Resources'])} resources", file=sys.stderr)
PY
"$tools/sam/bin/cfn-lint" "$work/translated.json"

echo "== checkov" >&2
"$tools/checkov/bin/checkov" --skip-download --quiet --compact --framework cloudformation -f "$template" >"$work/checkov.log" 2>&1 \
  || { cat "$work/checkov.log" >&2; echo "checkov: fix the check or suppress it in the template with a reason" >&2; exit 1; }
"$tools/checkov/bin/checkov" --skip-download --framework cloudformation -f "$template" -o json 2>/dev/null \
  | "$tools/sam/bin/python" -c 'import json, sys; s = json.load(sys.stdin)["summary"]; print("checkov: %(passed)d passed, %(failed)d failed, %(skipped)d suppressed with a reason" % s, file=sys.stderr)'

echo "== template properties (tests/template_test.py)" >&2
"$tools/sam/bin/python" tests/template_test.py "$template" "$work/translated.json"
echo "== the checks catch broken templates (tests/template_mutations.py)" >&2
"$tools/sam/bin/python" tests/template_mutations.py "$template"

echo "== native code in the functions (must build from source, statically)" >&2
# Every -sys crate in the functions' graph, against the ones known to compile their C code
# into the binary. A new one (say, a binding to a system library) would link a library provided.al2023 does
# not have: review it, then add it here.
allowed="aws-lc-sys lcms2-sys libaom-sys libwebp-sys turbojpeg-sys"
packages=()
for dir in functions/*/; do packages+=(-p "catg-fn-$(basename "$dir")"); done
found=$(cargo tree --locked "${packages[@]}" -e normal,build --prefix none \
  | awk '{print $1}' | grep -E -- '-sys$' | sort -u | tr '\n' ' ')
for crate in $found; do
  [[ " $allowed " == *" $crate "* ]] || { echo "the Lambda functions now depend on $crate: does it link a system library?" >&2; exit 1; }
done
echo "native crates in the functions: $found(all built from source)" >&2
