"""Pin the Architecture parameter of a built template to what `sam build` built.

`sam deploy` deploys .aws-sam/build/template.yaml with whatever Architecture it is given; an
arm64 build deployed with Architecture=x86_64 (the template's default) would create functions
that cannot start. After a build, infra/sam-build.sh rewrites that template so its Architecture
parameter allows, and defaults to, only the architecture of the binaries inside: a mismatched
`sam deploy` then fails validation before anything changes.

    python infra/pin_architecture.py .aws-sam/build/template.yaml x86_64|arm64

The output is JSON, which is YAML and which CloudFormation and SAM read alike.
"""

import json
import sys

from cfnlint.decode import decode


def pin(template, architecture):
    parameter = template["Parameters"]["Architecture"]
    if architecture not in parameter.get("AllowedValues", []):
        raise ValueError(f"{architecture} is not one of {parameter.get('AllowedValues')}")
    parameter["AllowedValues"] = [architecture]
    parameter["Default"] = architecture
    parameter["ConstraintDescription"] = (
        f"the functions in this build are {architecture}: build again with Architecture={architecture} changed"
    )
    return template


def main(path, architecture):
    template, matches = decode(path)
    if matches:
        sys.exit(f"cannot parse {path}: {matches}")
    pinned = pin(json.loads(json.dumps(template)), architecture)
    with open(path, "w") as out:
        json.dump(pinned, out, indent=1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
