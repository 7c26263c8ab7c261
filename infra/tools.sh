# Sourced by the infra scripts: installs the Python-packaged tools they use into $tools (default
# target/tools), each in its own virtualenv so their pinned dependencies never fight.
#   need_moto          moto[server]            -> $tools/venv        (local-stack.sh)
#   need_cargo_lambda  cargo-lambda + ziglang  -> $tools/venv        (lambda-smoke.sh, sam-build.sh)
#   need_sam           aws-sam-cli + cfn-lint  -> $tools/sam         (check-template.sh, sam-build.sh)
#   need_checkov       checkov                 -> $tools/checkov     (check-template.sh)
tools="${CATG_TOOLS:-$PWD/target/tools}"

_venv() {  # dir packages...
  local dir=$1; shift
  [[ -x "$dir/bin/pip" ]] || python3 -m venv "$dir"
  echo "== installing $* (PyPI) into $dir" >&2
  "$dir/bin/pip" install -q "$@" >&2
}
need_moto() { [[ -x "$tools/venv/bin/moto_server" ]] || _venv "$tools/venv" 'moto[server]'; }
need_cargo_lambda() { [[ -x "$tools/venv/bin/cargo-lambda" ]] || _venv "$tools/venv" cargo-lambda ziglang; }
need_sam() { [[ -x "$tools/sam/bin/sam" && -x "$tools/sam/bin/cfn-lint" ]] || _venv "$tools/sam" aws-sam-cli cfn-lint; }
need_checkov() { [[ -x "$tools/checkov/bin/checkov" ]] || _venv "$tools/checkov" checkov; }
