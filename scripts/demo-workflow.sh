#!/usr/bin/env bash
# `make demo-workflow`: start a devnet whose workers take the physics kinds, run the dijet
# workflow (generate x4 seeds -> analyze -> merge) through it, show the merged result, stop.
# Ports and home can be moved with HEPX_DEMO_ANVIL_PORT / HEPX_DEMO_API_PORT / HEPX_HOME.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
ANVIL_PORT=${HEPX_DEMO_ANVIL_PORT:-8545}
API_PORT=${HEPX_DEMO_API_PORT:-8000}
export HEPX_HOME=${HEPX_HOME:-$(mktemp -d -t hepx-demo-workflow.XXXXXX)}
export HEPX_API_URL=http://127.0.0.1:$API_PORT
LOG=$HEPX_HOME/devnet.log

"$BIN/hepx" devnet up --anvil-port "$ANVIL_PORT" --api-port "$API_PORT" --challenge-window 2 \
    --policy examples/hep-policy.yaml >"$LOG" 2>&1 &
DEVNET=$!
cleanup() {
    kill -INT "$DEVNET" 2>/dev/null || true
    wait "$DEVNET" 2>/dev/null || true
}
trap cleanup EXIT

echo "starting the devnet (home: $HEPX_HOME) ..."
for _ in $(seq 1 120); do
    if grep -q "hepx devnet is up" "$LOG"; then break; fi
    if ! kill -0 "$DEVNET" 2>/dev/null; then cat "$LOG"; echo "devnet failed to start" >&2; exit 1; fi
    sleep 0.5
done

echo
echo "== hepx workflow check examples/dijet-workflow.yaml"
"$BIN/hepx" workflow check examples/dijet-workflow.yaml
echo
echo "== hepx workflow submit examples/dijet-workflow.yaml --wait"
OUT=$("$BIN/hepx" workflow submit examples/dijet-workflow.yaml --wait)
echo "$OUT"
RESULT=$(echo "$OUT" | sed -n 's/^workflow .* done: merge result \([^ ]*\)$/\1/p')
[ -n "$RESULT" ] || { echo "no merge result" >&2; exit 1; }

echo
echo "== hepx store ls $RESULT/outputs"
"$BIN/hepx" store ls "$RESULT/outputs"
echo
echo "== merged cross section and jet pT spectrum (cross section per bin, mb)"
"$BIN/hepx" store cat "$RESULT/outputs/summary.json" | "$BIN/python" -c '
import json, sys
s = json.load(sys.stdin)
sigma, err, events, seeds = (s[k] for k in ("sigma_mb", "sigma_err_mb", "events", "seeds"))
print(f"sigma = {sigma:.4g} +- {err:.2g} mb from {events} events, seeds {seeds}")
h = s["histograms"]["jet_pt"]
for low, value in list(zip(h["edges"], h["values"]))[:10]:
    print(f"  pT >= {low:5.0f} GeV  {value:.3e}  " + "#" * max(0, int(60 * value / max(h["values"]))))
'
"$BIN/hepx" store cat "$RESULT/outputs/jet_pt.png" >"$HEPX_HOME/merged-jet_pt.png"
echo "plot: $HEPX_HOME/merged-jet_pt.png"
echo "provenance: hepx store cat $RESULT/provenance.json"
