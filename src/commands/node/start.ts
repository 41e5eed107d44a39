import {Flags} from '@oclif/core'
import {BaseCommand} from '../../base-command.js'

export default class NodeStart extends BaseCommand<typeof NodeStart> {
  static override summary = 'Run an edge node server: the r1 runtime behind a signed WebSocket endpoint'
  static override description =
    'Prints the node address and URL (under --json one line {address, url, alias} on stdout first). The node key, allow-list, pipelines, bundles and event journal live in --data-dir; pipelines are restored on start. Ctrl-C or SIGTERM stops it gracefully.'
  static override examples = [
    '<%= config.bin %> node start',
    '<%= config.bin %> node start --port 0 --data-dir ./node-a --alias edge-a --json',
    '<%= config.bin %> node start --host 0.0.0.0 --port 7443 --tls-cert cert.pem --tls-key key.pem',
  ]

  static override interruptible = true
  static override flags = {
    host: Flags.string({description: 'Interface to listen on.', default: '127.0.0.1'}),
    port: Flags.integer({description: 'TCP port (0 picks a free one; the URL shows it).', default: 7443, min: 0, max: 65535}),
    'data-dir': Flags.string({description: 'Node state directory [default: $XDG_DATA_HOME/r1/node or ~/.local/share/r1/node].'}),
    'tls-cert': Flags.string({description: 'PEM certificate: serve wss://.', dependsOn: ['tls-key']}),
    'tls-key': Flags.string({description: 'PEM private key of --tls-cert.', dependsOn: ['tls-cert']}),
    alias: Flags.string({description: 'Human name of the node (EE_PAYLOAD_PATH[0], heartbeats).'}),
  }

  public async run(): Promise<void> {
    const {defaultDataDir, startNodeServer} = await import('../../runtime/serve.js')
    const dataDir = this.flags['data-dir'] ?? defaultDataDir()
    const node = await startNodeServer({
      dataDir,
      host: this.flags.host,
      port: this.flags.port,
      tlsCertPath: this.flags['tls-cert'],
      tlsKeyPath: this.flags['tls-key'],
      alias: this.flags.alias,
    })
    this.onCleanup(() => node.stop())
    if (this.jsonEnabled()) this.ndjson({address: node.address, url: node.url, alias: node.alias})
    else {
      process.stdout.write(`r1 node ${node.alias}\n  address  ${node.address}\n  url      ${node.url}\n  data     ${node.dataDir}\n`)
      const allowed = node.allowList.size()
      this.note(allowed === 0 ? `No address is allowed to send commands yet: r1 node allow <address> --data-dir ${node.dataDir}` : `${allowed} address(es) allowed. Ctrl-C stops the node.`)
    }
    await new Promise<void>((resolve) => {
      if (this.signal.aborted) resolve()
      else this.signal.addEventListener('abort', () => resolve(), {once: true})
    })
    this.note('Stopping: closing sessions and instances…')
    await node.stop()
  }
}
