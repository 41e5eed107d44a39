#!/usr/bin/env node
// `npm run bench`: every budget (src/ARCHITECTURE.md, "Budgets"), each as a ratio to a baseline measured in this run.
// Exits 1 when a group fails to run or any row misses its budget.
// Each bench/<name>.js default-exports an async function returning rows made with `row()` from lib.js.
// `--json` prints the rows as one JSON document; `node bench/run.js startup` runs one group.
const groups = ['startup', 'local-run', 'events', 'deploy', 'rollout', 'signing', 'services', 'fleet']
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('--'))
const json = process.argv.includes('--json')
const rows = []
let failed = false
for (const group of groups) {
  if (wanted.length > 0 && !wanted.includes(group)) continue
  const mod = await import(`./${group}.js`)
  try {
    rows.push(...(await mod.default()))
  } catch (error) {
    failed = true
    rows.push({figure: `${group}: bench failed`, error: error.message})
  }
}
const missed = rows.filter((r) => r.ok === false)
if (missed.length > 0) failed = true
if (json) {
  process.stdout.write(JSON.stringify({rows}, null, 2) + '\n')
} else {
  for (const r of rows) {
    if (r.error) {
      console.log(`✖ ${r.figure}: ${r.error}`)
      continue
    }
    const mark = r.ok === undefined ? '·' : r.ok ? '✔' : '✖'
    const base = r.baseline === undefined ? '' : `  baseline ${r.baselineName} ${r.baseline} ${r.unit}`
    const ratio = r.ratio === undefined ? '' : `  ratio ${r.ratio}×`
    const budget = r.budget === undefined ? '' : `  budget ${r.budget}`
    console.log(`${mark} ${r.figure}: ${r.value} ${r.unit}${base}${ratio}${budget}`)
  }
  const errors = rows.filter((r) => r.error).length
  const ok = rows.filter((r) => r.ok === true).length
  console.log(`${ok} within budget, ${missed.length} over budget, ${errors} groups failed`)
}
process.exitCode = failed ? 1 : 0
