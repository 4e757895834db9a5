// Reference CIDs from js-ipfs-unixfs-importer (defaults = kubo's `ipfs add --cid-version=1
// --raw-leaves`): prints {"<path>": "<cid>"} for each file or directory given.
// Usage: node unixfs_cids.mjs PATH...
import { createReadStream, readdirSync, statSync } from 'node:fs'
import { basename, join } from 'node:path'
import { importer } from 'ipfs-unixfs-importer'
import { MemoryBlockstore } from 'blockstore-core'

function * candidates (path, prefix) {
  if (statSync(path).isDirectory()) {
    yield { path: prefix }
    for (const name of readdirSync(path)) {
      yield * candidates(join(path, name), `${prefix}/${name}`)
    }
  } else {
    yield { path: prefix, content: createReadStream(path) }
  }
}

const out = {}
for (const path of process.argv.slice(2)) {
  const name = basename(path)
  let root
  for await (const entry of importer(candidates(path, name), new MemoryBlockstore())) {
    if (entry.path === name) root = entry.cid.toString()
  }
  out[path] = root
}
console.log(JSON.stringify(out))
