import {defineConfig} from 'vitest/config'

// R1_TEST_REPORT=<file> adds a JSON report (.ci/run counts passed/failed/skipped/todo from it)
// and refuses `.only`, as vitest does under CI=true.
const report = process.env.R1_TEST_REPORT

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    disableConsoleIntercept: true,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    ...(report ? {allowOnly: false} : {}),
    reporters: report ? ['default', ['json', {outputFile: report}]] : ['default'],
  },
})
