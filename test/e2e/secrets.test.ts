// Secrets end to end, attacked as a user would find leaks: the built CLI validates the references,
// refuses to deploy without the values, ships them encrypted to a real `r1 node start`, and the values
// never show in `r1 logs --json`, `r1 status --json`, `--dry-run` or the node's data dir.
import {mkdirSync, readdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {type NodeProcess, bin, cliIdentity, r1, repoRoot, startNode, tempRoot} from '../deploy/nodes.js'

const TOKEN = 'tok_live_9c1e7f33ab'
const DB_URL = 'postgres://svc:Kx7-pa55@db.internal/app'

const root = tempRoot('r1-e2e-secrets-')
const project = join(root.dir, 'project')
let env: Record<string, string>
let node: NodeProcess

function config(tokenRef = '{ secret: API_TOKEN }'): string {
  return `name: secret-app
version: 0.1.0
plugins:
  TOKEN_USER:
    entry: src/token-user.ts
    description: Logs and emits its token (a careless plugin)
    config:
      TOKEN: { type: string, required: true }
pipelines:
  api:
    type: Void
    instances:
      user-1:
        plugin: TOKEN_USER
        config: { token: ${tokenRef}, process_delay: 0.3 }
      app-1:
        plugin: PROCESS_APP_RUNNER
        config:
          command: 'echo "db=$DB_URL"; sleep 60'
          env: { DB_URL: { secret: DB_URL } }
          process_delay: 0.2
targets:
  edge-a: { url: "${node.url}", address: "${node.address}" }
`
}

async function setSecret(name: string, value: string) {
  const run = await execa(process.execPath, [bin, 'secrets', 'set', name, '--target', 'edge-a', '--dir', project], {cwd: repoRoot, env: {NO_COLOR: '1', CI: '1', ...env}, reject: false, input: value})
  expect(run.exitCode, run.stderr).toBe(0)
  expect(run.stdout + run.stderr).not.toContain(value)
}

function allFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry)
    return statSync(path).isDirectory() ? allFiles(path) : [path]
  })
}

beforeAll(async () => {
  const cli = await cliIdentity(root.dir)
  env = cli.env
  node = await startNode({dataDir: join(root.dir, 'node'), allow: [cli.address]})
  mkdirSync(join(project, 'src'), {recursive: true})
  writeFileSync(
    join(project, 'src/token-user.ts'),
    `import {definePlugin} from 'r1/plugin'
export default definePlugin({
  async process(ctx) {
    ctx.log.info(\`token=\${ctx.config.TOKEN}\`)
    console.error('stderr', ctx.config.TOKEN)
    return {LEN: String(ctx.config.TOKEN).length, ECHO: ctx.config.TOKEN}
  },
})
`,
  )
  writeFileSync(join(project, 'config.yaml'), config())
}, 120_000)

afterAll(async () => {
  await node?.stop()
  root.dispose()
})

describe.sequential('secrets through the built CLI and a real node', () => {
  it('r1 validate accepts a reference where a string goes and names a bad secret name', async () => {
    const ok = await r1(['validate', project, '--json'], {env})
    expect(ok.exitCode, ok.stdout + ok.stderr).toBe(0)
    writeFileSync(join(project, 'config.yaml'), config('{ secret: api-token }'))
    const bad = await r1(['validate', project, '--json'], {env})
    expect(bad.exitCode).toBe(3)
    expect(JSON.stringify(bad.json)).toContain('config-secret')
    writeFileSync(join(project, 'config.yaml'), config('{ secret: API_TOKEN }').replace('process_delay: 0.3', 'process_delay: { secret: API_TOKEN }'))
    const wrongType = await r1(['validate', project, '--json'], {env})
    expect(wrongType.exitCode).toBe(3)
    expect(JSON.stringify(wrongType.json)).toMatch(/secret reference stands for a string/)
    writeFileSync(join(project, 'config.yaml'), config())
  })

  it('a deploy with a secret not set fails that target with exit 3 and the command that sets it', async () => {
    const run = await r1(['deploy', '--dir', project, '--json'], {env})
    expect(run.exitCode, run.stderr).toBe(3)
    const target = run.json.targets[0]
    expect(target.status).toBe('invalid')
    expect(target.error).toMatch(/API_TOKEN, DB_URL not set for target edge-a/)
    expect(target.hint).toContain('r1 secrets set API_TOKEN --target edge-a')
  })

  it('--dry-run lists the secret names it would send, never a value', async () => {
    await setSecret('API_TOKEN', TOKEN)
    await setSecret('DB_URL', DB_URL)
    expect(readFileSync(join(project, '.r1/secrets.json'), 'utf8')).not.toContain(TOKEN)
    const run = await r1(['deploy', '--dir', project, '--json', '--dry-run'], {env})
    expect(run.exitCode, run.stderr).toBe(0)
    expect(run.json.targets[0].secrets).toEqual({api: ['API_TOKEN', 'DB_URL']})
    const human = await r1(['deploy', '--dir', project, '--dry-run'], {env})
    expect(human.stdout).toContain('secrets for api: API_TOKEN, DB_URL')
    for (const out of [run.stdout, run.stderr, human.stdout, human.stderr]) {
      expect(out).not.toContain(TOKEN)
      expect(out).not.toContain('Kx7-pa55')
    }
  })

  it('deploys; the plugin that prints its token shows [redacted:API_TOKEN]; logs, status and the data dir never hold a value', async () => {
    const run = await r1(['deploy', '--dir', project, '--json'], {env})
    expect(run.exitCode, run.stderr + run.stdout).toBe(0)
    let logs = ''
    for (let i = 0; i < 100; i++) {
      const got = await r1(['logs', '--dir', project, '--json', '--since', '1h'], {env})
      expect(got.exitCode, got.stderr).toBe(0)
      logs = got.stdout
      if (logs.includes('token=[redacted:API_TOKEN]') && logs.includes('db=[redacted:DB_URL]') && logs.includes('stderr [redacted:API_TOKEN]')) break
      await new Promise((r) => setTimeout(r, 200))
    }
    expect(logs).toContain('token=[redacted:API_TOKEN]')
    expect(logs).toContain('stderr [redacted:API_TOKEN]')
    expect(logs).toContain('db=[redacted:DB_URL]')
    expect(logs).toMatch(/"ECHO":"\[redacted:API_TOKEN\]"/)
    expect(logs).toContain(`"LEN":${TOKEN.length}`) // the plugin did get the value
    const status = await r1(['status', '--dir', project, '--json'], {env})
    expect(status.exitCode, status.stderr).toBe(0)
    for (const out of [logs, status.stdout, run.stdout]) {
      expect(out).not.toContain(TOKEN)
      expect(out).not.toContain('Kx7-pa55')
    }
    await node.stop()
    const secretsFiles = allFiles(node.dataDir).filter((f) => f.includes('/secrets/'))
    expect(secretsFiles).toHaveLength(1)
    for (const file of allFiles(node.dataDir)) {
      const text = readFileSync(file).toString('latin1')
      expect(text.includes(TOKEN), file).toBe(false)
      expect(text.includes('Kx7-pa55'), file).toBe(false)
    }
  })
})
