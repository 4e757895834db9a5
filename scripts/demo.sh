#!/usr/bin/env bash
# `make demo`: start the devnet in the background, run the example physics job through it,
# show the result (from the store and from the chain's events via cast), then stop everything.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
API=${HEPX_API_URL:-http://127.0.0.1:8000}
LOG=$(mktemp -t hepx-devnet.XXXXXX.log)

"$BIN/hepx" devnet up >"$LOG" 2>&1 &
DEVNET=$!
cleanup() {
    kill -INT "$DEVNET" 2>/dev/null || true
    wait "$DEVNET" 2>/dev/null || true
}
trap cleanup EXIT

echo "starting the devnet (log: $LOG) ..."
for _ in $(seq 1 120); do
    if curl -fsS "$API/health" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$DEVNET" 2>/dev/null; then cat "$LOG"; echo "devnet failed to start" >&2; exit 1; fi
    sleep 0.5
done
grep -v "^  try:\|^  stop:" "$LOG" || true

echo
echo "== hepx job submit examples/pythia-dijet.yaml --wait"
OUT=$("$BIN/hepx" job submit examples/pythia-dijet.yaml --wait)
echo "$OUT"
RESULT=$(echo "$OUT" | sed -n 's/^settled: result \([^ ]*\) .*/\1/p')

echo
echo "== hepx store ls $RESULT"
"$BIN/hepx" store ls "$RESULT"
echo
echo "== hepx store cat $RESULT/outputs/summary.json"
"$BIN/hepx" store cat "$RESULT/outputs/summary.json"
echo

MARKET=$("$BIN/python" -c "import json,os,pathlib; h=pathlib.Path(os.environ.get('HEPX_HOME', pathlib.Path.home()/'.hepx')); print(json.load(open(h/'deployment.json'))['job_market'])")
echo
echo "== cast logs: ResultSubmitted events of $MARKET"
CAST=node_modules/@foundry-rs/cast-linux-amd64/bin/cast
"$CAST" logs --rpc-url http://127.0.0.1:8545 --address "$MARKET" --from-block 0 \
    "ResultSubmitted(uint256 indexed jobId, address indexed worker, string resultCid, uint256 challengeEnd)" \
    | tee /dev/stderr | grep -q "$("$CAST" abi-encode 'f(string)' "$RESULT" | cut -c 131-170)" \
    && echo "cast sees result $RESULT in the contract's events"
