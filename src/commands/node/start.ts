import {Flags} from '@oclif/core'
import {BaseCommand, nodeDataDirFlag} from '../../base-command.js'
import {NODE_START_DEFAULTS, SERVICES_DEFAULTS} from '../../runtime/node-main.js'

export default class NodeStart extends BaseCommand<typeof NodeStart> {
  static override summary = 'Run an edge node server: the r1 runtime behind a signed WebSocket endpoint and/or on an MQTT broker'
  static override description =
    'Prints the node address and URL (under --json one line {address, url, alias, cstoreUrl, r1fsUrl, broker?, topicRoot?, tags?} on stdout first; url is null for a node on a broker without --port). With --broker the node dials out to an MQTT broker, serves clients through it (commands on <root>/<address>/config, replies encrypted to each client) and publishes its signed public heartbeat with its --tag labels on <root>/ctrl. It serves CStore and R1FS over Ratio1\'s HTTP APIs (ports 31234 and 31235, free ports when --port is 0; loopback unless --services-host), kept on the data dir or, with --cstore/--r1fs nats://…, in NATS JetStream; every instance and process app gets their URLs in EE_CHAINSTORE_API_URL and EE_R1FS_API_URL (also CSTORE_API_URL, R1FS_API_URL). The node key, allow-list, pipelines, bundles and event journal live in --data-dir; pipelines are restored on start. Instances are contained: own process group, the Node.js permission model for JavaScript, an unprivileged user when the node runs as root (--run-as), a memory cap (MAX_MEMORY_MB, --max-memory-mb). Ctrl-C or SIGTERM stops it gracefully.'
  static override examples = [
    '<%= config.bin %> node start',
    '<%= config.bin %> node start --port 0 --data-dir ./node-a --alias edge-a --json',
    '<%= config.bin %> node start --host 0.0.0.0 --port 7443 --tls-cert cert.pem --tls-key key.pem',
    '<%= config.bin %> node start --run-as r1-instances --max-memory-mb 512 --bundle-quota 1024',
    '<%= config.bin %> node start --broker mqtts://broker.example:8883 --broker-user edge-a --broker-password-file ./broker.pass --tag site=lab --tag role=camera',
    '<%= config.bin %> node start --cstore nats://127.0.0.1:4222 --r1fs nats://127.0.0.1:4222 --r1fs-quota 4096',
  ]

  static override interruptible = true
  static override flags = {
    host: Flags.string({description: 'Interface to listen on.', default: NODE_START_DEFAULTS.host}),
    port: Flags.integer({description: `TCP port (0 picks a free one; the URL shows it) [default: ${NODE_START_DEFAULTS.port}, or none with --broker: a node on a broker listens only when given --port].`, min: 0, max: 65535}),
    ...nodeDataDirFlag,
    'tls-cert': Flags.string({description: 'PEM certificate: serve wss://.', dependsOn: ['tls-key']}),
    'tls-key': Flags.string({description: 'PEM private key of --tls-cert.', dependsOn: ['tls-cert']}),
    alias: Flags.string({description: 'Human name of the node (EE_PAYLOAD_PATH[0], heartbeats).'}),
    'run-as': Flags.string({
      description: "User that instances run as: a name, uid[:gid], or none (the node's own user). Default: nobody when the node runs as root, else the node's own user.",
      helpValue: '<user|uid[:gid]|none>',
    }),
    'max-memory-mb': Flags.integer({description: 'Memory cap (MiB) of each instance whose config sets no MAX_MEMORY_MB [default: none].', min: 1}),
    broker: Flags.string({description: 'Also serve clients through this MQTT broker: the node dials out (mqtt://, mqtts://, ws://, wss://) and reconnects with back-off.', helpValue: '<url>'}),
    'broker-user': Flags.string({description: 'Broker user name.', dependsOn: ['broker']}),
    'broker-password-file': Flags.string({description: 'File whose first line is the broker password.', dependsOn: ['broker']}),
    'broker-ca': Flags.string({description: 'PEM CA certificate for an mqtts:// or wss:// broker.', dependsOn: ['broker']}),
    'topic-root': Flags.string({description: 'Root of the MQTT topics [default: naeural].', dependsOn: ['broker']}),
    tag: Flags.string({description: 'A k=v label carried in heartbeats as R1_TAGS (repeatable; `r1 status --broker --tag` filters on it).', multiple: true, helpValue: '<k=v>'}),
    'heartbeat-interval': Flags.integer({description: 'Seconds between heartbeats (each says its period, so a watcher can tell when they stop; also the public heartbeat on the broker) [default: 10].', min: 1, helpValue: '<seconds>'}),
    'bundle-quota': Flags.integer({description: 'Disk space (MiB) all stored bundles may take; bundles no kept pipeline version uses are collected [default: 512].', min: 1, helpValue: '<MiB>'}),
    'services-host': Flags.string({description: "Interface CStore's and R1FS's HTTP APIs listen on.", default: SERVICES_DEFAULTS.host}),
    'cstore-port': Flags.integer({description: 'CStore HTTP API port (0 picks a free one) [default: 31234, or a free one when --port is 0].', min: 0, max: 65535}),
    'r1fs-port': Flags.integer({description: 'R1FS HTTP API port (0 picks a free one) [default: 31235, or a free one when --port is 0].', min: 0, max: 65535}),
    cstore: Flags.string({description: 'Keep CStore in this NATS JetStream key-value store (shared by every node using it) [default: embedded on the data dir].', helpValue: '<nats://host:port>'}),
    r1fs: Flags.string({description: 'Keep R1FS files in this NATS JetStream object store (shared by every node using it) [default: embedded on the data dir].', helpValue: '<nats://host:port>'}),
    'r1fs-quota': Flags.integer({description: `Disk space (MiB) all R1FS files may take [default: ${SERVICES_DEFAULTS.r1fsQuotaMib}].`, min: 1, helpValue: '<MiB>'}),
  }

  public async run(): Promise<void> {
    const {serveNode} = await import('../../runtime/node-main.js')
    const f = this.flags
    const options = {
      host: f.host,
      port: f.port,
      dataDir: f['data-dir'],
      tlsCert: f['tls-cert'],
      tlsKey: f['tls-key'],
      alias: f.alias,
      runAs: f['run-as'],
      maxMemoryMb: f['max-memory-mb'],
      bundleQuotaMib: f['bundle-quota'],
      broker: f.broker,
      brokerUser: f['broker-user'],
      brokerPasswordFile: f['broker-password-file'],
      brokerCa: f['broker-ca'],
      topicRoot: f['topic-root'],
      tags: f.tag,
      heartbeatInterval: f['heartbeat-interval'],
      servicesHost: f['services-host'],
      cstorePort: f['cstore-port'],
      r1fsPort: f['r1fs-port'],
      cstore: f.cstore,
      r1fs: f.r1fs,
      r1fsQuotaMib: f['r1fs-quota'],
    }
    await serveNode(options, {json: this.jsonEnabled(), signal: this.signal, note: (message) => this.note(message)})
  }
}
