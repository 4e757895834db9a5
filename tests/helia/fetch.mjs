// Fetch ipfs://<cid>[/<path>] from one trustless gateway with Helia's verified-fetch, which checks
// every block against its CID, and write the verified bytes to <out>.
// Usage: node fetch.mjs <gateway-url> <cid[/path]> <out> [timeout-seconds, default 30]
// Exit 0 with the bytes written; exit 1 with one JSON line {"status", "error"} on stdout.
// A block whose hash does not match its CID is dropped and asked for again from another
// provider; with one gateway none comes, so a tampered body ends by the timeout (set
// DEBUG='helia:*:error' to see Helia's InvalidMultihashError).
import { writeFile } from 'node:fs/promises'
import { fallbackRouter } from '@helia/fallback-router'
import { trustlessGatewayBlockBroker } from '@helia/trustless-gateway-client'
import { createVerifiedFetch } from '@helia/verified-fetch'
import { createHeliaLight } from 'helia'

const [gateway, target, out, seconds = '30'] = process.argv.slice(2)
if (!gateway || !target || !out) {
  console.error('usage: node fetch.mjs <gateway-url> <cid[/path]> <out>')
  process.exit(2)
}

// A Helia node with no libp2p and no delegated routing: its only provider is the gateway under
// test, so nothing else is ever contacted, and every block comes from it as ?format=raw.
// createVerifiedFetch({ gateways }) would ask libp2p for providers first and wait out its
// timeout before it tries a gateway; Helia 7 hangs when it has only fallback routers, so the
// gateway is offered as an ordinary router. http:// and loopback are refused unless allowed.
const onlyGateway = fallbackRouter({ gateways: [gateway], shuffle: false })
const helia = await createHeliaLight({
  blockBrokers: [trustlessGatewayBlockBroker({ allowInsecure: true, allowLocal: true })],
  routers: [{ name: 'hepx-gateway', findProviders: (cid, options) => onlyGateway.findProviders(cid, options) }]
}).start()
const verifiedFetch = await createVerifiedFetch(helia)
// A timer that holds the event loop open (AbortSignal.timeout's does not, and a stalled body
// would end the process with nothing said).
const controller = new AbortController()
const timer = setTimeout(() => controller.abort(new Error(`no verified bytes within ${seconds} s`)), Number(seconds) * 1000)
let code = 1
try {
  const response = await verifiedFetch(`ipfs://${target}`, { signal: controller.signal })
  if (response.ok) {
    await writeFile(out, new Uint8Array(await response.arrayBuffer()))
    code = 0
  } else {
    console.log(JSON.stringify({ status: response.status, error: await response.text() }))
  }
} catch (err) {
  console.log(JSON.stringify({ status: null, error: `${err.name}: ${err.message}` }))
} finally {
  clearTimeout(timer)
  await verifiedFetch.stop()
  await helia.stop()
}
process.exit(code)
