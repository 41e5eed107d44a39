#!/usr/bin/env node
// Fast paths answer without loading oclif (start-up time is a budget, ARCHITECTURE.md §8);
// anything they do not handle (help, other flags, errors) falls through to oclif.
const argv = process.argv.slice(2)
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v')) {
  const {readFileSync} = await import('node:fs')
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
  process.stdout.write(`r1/${pkg.version} ${process.platform}-${process.arch} node-${process.version}\n`)
} else if (argv[0] === 'validate' && (await fastValidate()) !== undefined) {
  // handled
} else if (argv[0] === 'node' && argv[1] === 'start' && (await fastNodeStart()) !== undefined) {
  // handled: a node process never loads oclif (its idle RSS is a budget)
} else {
  // oclif checks Node against its own engines (older than r1's, which `r1 doctor` checks) by loading
  // semver, a few tens of ms of every command; children (plugin hosts, npm) do not inherit the switch
  const skipEngineCheck = process.env.OCLIF_DISABLE_ENGINE_WARNING === undefined
  if (skipEngineCheck) process.env.OCLIF_DISABLE_ENGINE_WARNING = '1'
  const {execute} = await import('@oclif/core')
  if (skipEngineCheck) delete process.env.OCLIF_DISABLE_ENGINE_WARNING
  await execute({dir: import.meta.url})
}

async function fastValidate() {
  const {fastValidate: run} = await import('../dist/manifest/fast-validate.js')
  const code = await run(argv)
  if (code !== undefined) process.exitCode = code
  return code
}

async function fastNodeStart() {
  const {fastNodeStart: run} = await import('../dist/runtime/node-main.js')
  const code = await run(argv)
  if (code !== undefined) process.exitCode = code
  return code
}
