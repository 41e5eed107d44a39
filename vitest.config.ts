import {defineConfig} from 'vitest/config'

// R1_TEST_REPORT=<file> adds a JSON report (.ci/run counts passed/failed from it).
const report = process.env.R1_TEST_REPORT

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    disableConsoleIntercept: true,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: report ? ['default', ['json', {outputFile: report}]] : ['default'],
  },
})
