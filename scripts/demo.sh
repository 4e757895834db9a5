#!/usr/bin/env bash
# `make demo`: start the devnet in the background, run the example physics job through it,
# show the result (from the store and from the chain's events via cast), then stop everything.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
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
    if grep -q "hepx devnet is up" "$LOG"; then break; fi
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
echo "== hepx store cat $RESULT/outputs/summary.json (first lines)"
"$BIN/hepx" store cat "$RESULT/outputs/summary.json" | head -n 12
echo

MARKET=$("$BIN/python" -c "from hepx.config import load_settings; from hepx.deployment import Deployment; print(Deployment.load(load_settings().deployment_path).job_market)")
CAST=node_modules/@foundry-rs/cast-linux-amd64/bin/cast
echo "== cast logs --address $MARKET 'ResultSubmitted(...)', data decoded with cast abi-decode"
FOUND=""
for DATA in $("$CAST" logs --json --rpc-url http://127.0.0.1:8545 --address "$MARKET" --from-block 0 \
        "ResultSubmitted(uint256 indexed,address indexed,string,uint256)" \
        | "$BIN/python" -c "import json,sys; print(' '.join(log['data'] for log in json.load(sys.stdin)))"); do
    CID=$("$CAST" abi-decode "f()(string,uint256)" "$DATA" | head -n 1 | tr -d '"')
    echo "  ResultSubmitted resultCid=$CID"
    [ "$CID" = "$RESULT" ] && FOUND=1
done
if [ -n "$FOUND" ]; then
    echo "cast sees result $RESULT in the contract's events"
else
    echo "cast did not find $RESULT in the contract's events" >&2
    exit 1
fi
