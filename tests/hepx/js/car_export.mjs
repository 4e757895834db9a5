// Reference CAR from the JS stack: imports PATH with ipfs-unixfs-importer (kubo's defaults)
// and writes its DAG with @ipld/car, blocks depth-first pre-order, each once (as
// `ipfs dag export` orders them). Prints the root CID.
// Usage: node car_export.mjs PATH OUT.car
import { createReadStream, createWriteStream, readdirSync, statSync } from 'node:fs'
import { basename, join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { importer } from 'ipfs-unixfs-importer'
import { MemoryBlockstore } from 'blockstore-core'
import { CarWriter } from '@ipld/car/writer'
import * as dagPB from '@ipld/dag-pb'

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

const [src, out] = process.argv.slice(2)
const name = basename(src)
const blocks = new MemoryBlockstore()
let root
for await (const entry of importer(candidates(src, name), blocks)) {
  if (entry.path === name) root = entry.cid
}

async function bytesOf (cid) {
  const parts = []
  for await (const part of blocks.get(cid)) parts.push(part)
  return Buffer.concat(parts)
}

const { writer, out: car } = CarWriter.create([root])
const done = pipeline(Readable.from(car), createWriteStream(out))
const seen = new Set()
async function visit (cid) {
  if (seen.has(cid.toString())) return
  seen.add(cid.toString())
  const bytes = await bytesOf(cid)
  await writer.put({ cid, bytes })
  if (cid.code === dagPB.code) {
    for (const link of dagPB.decode(bytes).Links) await visit(link.Hash)
  }
}
await visit(root)
await writer.close()
await done
console.log(root.toString())
