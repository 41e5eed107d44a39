import {Flags} from '@oclif/core'
import {BaseCommand, brokerDataDirFlag} from '../../base-command.js'

export default class BrokerStart extends BaseCommand<typeof BrokerStart> {
  static override summary = 'Run an embedded MQTT broker (aedes) that nodes and clients dial out to'
  static override description =
    'For development, tests and small fleets (MQTT 3.1.1, in memory). Prints its URLs (under --json one line {url, wsUrl?, auth, users, dataDir} on stdout first). With users in --data-dir (r1 broker user add) it checks logins and holds each user to its role\'s topics; without users it serves loopback only. Ctrl-C or SIGTERM stops it.'
  static override examples = [
    '<%= config.bin %> broker start',
    '<%= config.bin %> broker start --port 0 --ws-port 0 --json',
    '<%= config.bin %> broker start --host 0.0.0.0 --port 8883 --ws-port 8443 --tls-cert cert.pem --tls-key key.pem --data-dir /var/lib/r1-broker',
  ]

  static override interruptible = true
  static override flags = {
    host: Flags.string({description: 'Interface to listen on.', default: '127.0.0.1'}),
    port: Flags.integer({description: 'MQTT port (0 picks a free one; the URL shows it).', default: 1883, min: 0, max: 65535}),
    'ws-port': Flags.integer({description: 'Also serve MQTT over WebSocket on this port (0 picks a free one).', min: 0, max: 65535}),
    'tls-cert': Flags.string({description: 'PEM certificate: serve mqtts:// (and wss://).', dependsOn: ['tls-key']}),
    'tls-key': Flags.string({description: 'PEM private key of --tls-cert.', dependsOn: ['tls-cert']}),
    root: Flags.string({description: 'Topic root the ACLs apply to.', default: 'naeural'}),
    ...brokerDataDirFlag,
  }

  public async run(): Promise<void> {
    const {serveBroker} = await import('../../broker/serve.js')
    const f = this.flags
    const tls = f['tls-cert'] && f['tls-key'] ? {cert: f['tls-cert'], key: f['tls-key']} : undefined
    await serveBroker(
      {host: f.host, port: f.port, wsPort: f['ws-port'], tls, dataDir: f['data-dir'], topicRoot: f.root},
      {json: this.jsonEnabled(), signal: this.signal, note: (message) => this.note(message)},
    )
  }
}
