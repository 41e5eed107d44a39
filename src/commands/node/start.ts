import {Flags} from '@oclif/core'
import {BaseCommand, nodeDataDirFlag} from '../../base-command.js'
import {NODE_START_DEFAULTS} from '../../runtime/node-main.js'

export default class NodeStart extends BaseCommand<typeof NodeStart> {
  static override summary = 'Run an edge node server: the r1 runtime behind a signed WebSocket endpoint'
  static override description =
    'Prints the node address and URL (under --json one line {address, url, alias} on stdout first). The node key, allow-list, pipelines, bundles and event journal live in --data-dir; pipelines are restored on start. Instances are contained: own process group, the Node.js permission model for JavaScript, an unprivileged user when the node runs as root (--run-as), a memory cap (MAX_MEMORY_MB, --max-memory-mb). Ctrl-C or SIGTERM stops it gracefully.'
  static override examples = [
    '<%= config.bin %> node start',
    '<%= config.bin %> node start --port 0 --data-dir ./node-a --alias edge-a --json',
    '<%= config.bin %> node start --host 0.0.0.0 --port 7443 --tls-cert cert.pem --tls-key key.pem',
    '<%= config.bin %> node start --run-as r1-instances --max-memory-mb 512 --bundle-quota 1024',
  ]

  static override interruptible = true
  static override flags = {
    host: Flags.string({description: 'Interface to listen on.', default: NODE_START_DEFAULTS.host}),
    port: Flags.integer({description: 'TCP port (0 picks a free one; the URL shows it).', default: NODE_START_DEFAULTS.port, min: 0, max: 65535}),
    ...nodeDataDirFlag,
    'tls-cert': Flags.string({description: 'PEM certificate: serve wss://.', dependsOn: ['tls-key']}),
    'tls-key': Flags.string({description: 'PEM private key of --tls-cert.', dependsOn: ['tls-cert']}),
    alias: Flags.string({description: 'Human name of the node (EE_PAYLOAD_PATH[0], heartbeats).'}),
    'run-as': Flags.string({
      description: "User that instances run as: a name, uid[:gid], or none (the node's own user). Default: nobody when the node runs as root, else the node's own user.",
      helpValue: '<user|uid[:gid]|none>',
    }),
    'max-memory-mb': Flags.integer({description: 'Memory cap (MiB) of each instance whose config sets no MAX_MEMORY_MB [default: none].', min: 1}),
    'heartbeat-interval': Flags.integer({description: 'Seconds between heartbeats (each says its period, so a watcher can tell when they stop) [default: 10].', min: 1, helpValue: '<seconds>'}),
    'bundle-quota': Flags.integer({description: 'Disk space (MiB) all stored bundles may take; bundles no kept pipeline version uses are collected [default: 512].', min: 1, helpValue: '<MiB>'}),
  }

  public async run(): Promise<void> {
    const {serveNode} = await import('../../runtime/node-main.js')
    const f = this.flags
    const options = {host: f.host, port: f.port, dataDir: f['data-dir'], tlsCert: f['tls-cert'], tlsKey: f['tls-key'], alias: f.alias, runAs: f['run-as'], maxMemoryMb: f['max-memory-mb'], bundleQuotaMib: f['bundle-quota'], heartbeatInterval: f['heartbeat-interval']}
    await serveNode(options, {json: this.jsonEnabled(), signal: this.signal, note: (message) => this.note(message)})
  }
}
