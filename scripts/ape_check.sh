#!/usr/bin/env bash
# Check that Ape builds, tests and deploys the project's contracts (issue 3, item 7).
# Runs in the Ape venv (.venv-ape, `make ape-venv`): Ape pins web3 7, the runtime uses web3 8.
#   1. `ape compile` with the npm solc shim; every ABI must equal hepx/artifacts' ABI;
#   2. `ape test tests/ape` on an anvil Ape starts itself;
#   3. `ape run ape_deploy` against a devnet anvil started here on a free port.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
APE=${APE_VENV:-$REPO/.venv-ape}/bin/ape
[ -x "$APE" ] || { echo "ape-check: $APE missing: run \`make ape-venv\`" >&2; exit 2; }

WORK=$(mktemp -d)
ANVIL_PID=
cleanup() {
  [ -n "$ANVIL_PID" ] && kill "$ANVIL_PID" 2>/dev/null || true
  rm -rf "$WORK" "$REPO/contracts/.cache"
}
trap cleanup EXIT

# py-solc-x (inside ape-solidity) finds compilers as $SOLCX_BINARY_PATH/solc-v<version>; a
# symlink (not a copy) keeps the shim's relative require of node_modules/solc working.
mkdir -p "$WORK/solcx"
ln -s "$REPO/scripts/solc-shim.js" "$WORK/solcx/solc-v0.8.30"
export SOLCX_BINARY_PATH=$WORK/solcx
# Ape's data folder (package caches, logs) stays out of $HOME and the repo.
export APE_DATA_FOLDER=$WORK/ape-data
# Ape starts anvil from PATH for `ape test`; keep its state out of $HOME too.
ANVIL_BIN=$REPO/node_modules/@foundry-rs/anvil-linux-amd64/bin
export PATH=$ANVIL_BIN:$PATH
export HOME=$WORK/home && mkdir -p "$HOME"

echo "ape-check: compile"
"$APE" compile --force
"$REPO/.venv-ape/bin/python" scripts/ape_abi_check.py .build/__local__.json hepx/artifacts

echo "ape-check: test"
"$APE" test tests/ape --network ethereum:local:foundry -q -p no:cacheprovider

# ape-solidity may copy dependency sources into contracts/.cache while compiling; left there,
# `ape run` treats them as project sources and loses the project's own contract types.
rm -rf "$REPO/contracts/.cache"
echo "ape-check: deploy"
PORT=$("$REPO/.venv-ape/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
anvil --host 127.0.0.1 --port "$PORT" --silent &
ANVIL_PID=$!
for _ in $(seq 50); do
  curl -s -o /dev/null -X POST -H 'content-type: application/json' \
    --data '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' "http://127.0.0.1:$PORT" && break
  sleep 0.1
done
OUT=$("$APE" run ape_deploy --network "http://127.0.0.1:$PORT")
echo "$OUT"
ADDRESS=$(echo "$OUT" | awk '/^JobMarket /{print $2}')
CODE=$(curl -s -X POST -H 'content-type: application/json' \
  --data "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_getCode\",\"params\":[\"$ADDRESS\",\"latest\"]}" \
  "http://127.0.0.1:$PORT")
[ "${#CODE}" -gt 1000 ] || { echo "ape-check: no JobMarket code at '$ADDRESS'" >&2; exit 1; }
echo "ape-check: ok"
