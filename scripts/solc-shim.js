#!/usr/bin/env node
// A stand-in for the native `solc` binary over the npm `solc` package (solcjs, WebAssembly).
// No native solc installs here, and solcjs's own CLI prints a line before the JSON of
// --standard-json, which breaks tools that parse stdout (py-solc-x, forge, ape-solidity).
// Supported: --version, --standard-json (input on stdin); --allow-paths/--base-path/
// --include-path are accepted and used only to resolve imports given by path.
'use strict';
const fs = require('fs');
const path = require('path');

// Resolve `solc` from the repo's node_modules even when called through a symlink elsewhere.
const repoRoot = path.resolve(fs.realpathSync(__filename), '..', '..');
const solc = require(require.resolve('solc', { paths: [repoRoot, process.cwd()] }));

function usage(message) {
  process.stderr.write(`${message}\nusage: solc-shim.js --version | --standard-json [< input.json]\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
let mode = null;
const searchRoots = [];
for (let i = 0; i < args.length; i++) {
  const arg = args[i];
  if (arg === '--version' || arg === '--standard-json') {
    mode = arg;
  } else if (arg === '--base-path' || arg === '--include-path' || arg === '--allow-paths') {
    if (i + 1 >= args.length) usage(`${arg} needs a value`);
    searchRoots.push(...args[++i].split(','));
  } else if (arg === '-') {
    // native solc's "read stdin"; --standard-json reads stdin anyway
  } else {
    usage(`unrecognised option '${arg}'`);
  }
}

if (mode === '--version') {
  // Same shape as native solc, so version regexes of other tools match.
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
  process.exit(0);
}
if (mode !== '--standard-json') usage('no mode given');

function findImports(importPath) {
  for (const root of [...searchRoots, process.cwd()]) {
    const candidate = path.resolve(root, importPath);
    if (fs.existsSync(candidate)) return { contents: fs.readFileSync(candidate, 'utf8') };
  }
  return { error: `file not found: ${importPath} (searched ${[...searchRoots, '.'].join(', ')})` };
}

const input = fs.readFileSync(0, 'utf8');
// Like native solc, report problems inside the output JSON and exit 0; print nothing else.
process.stdout.write(solc.compile(input, { import: findImports }));
process.stdout.write('\n');
