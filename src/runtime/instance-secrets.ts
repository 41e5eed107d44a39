import type {Identity} from '../protocol/identity.js'
import {redactDeep, redactSecrets, resolveSecretRefs, secretNames} from '../protocol/secret-refs.js'
import type {InstanceSpec} from './ipc.js'
import type {SecretStore} from './secret-store.js'
import type {InstanceSupervisor, SupervisorEvent} from './supervisor.js'

type InstanceRef = Pick<InstanceSpec, 'pipeline' | 'signature' | 'instanceId' | 'config'>

/**
 * The secrets of running instances, for the node core: which sealed values each started with (a change
 * makes it reconfigure), which wait for a secret the node lacks, the values each process was given, and
 * the redaction of those values in what the instance emits. Plain values live here, in memory, only.
 */
export class InstanceSecrets {
  private readonly prints = new WeakMap<InstanceSupervisor, string>()
  /** Instances in `error` for want of a secret: the next config or secrets that fill the gap start them. */
  private readonly waiting = new WeakSet<InstanceSupervisor>()
  /** The values each instance process got, by instance path. */
  private readonly given = new Map<string, Record<string, string>>()

  constructor(
    readonly store: SecretStore,
    private readonly identity: Identity | undefined,
    private readonly alias: string,
  ) {}

  /** Records the sealed values `spec` uses as the ones `supervisor` runs with. */
  remember(supervisor: InstanceSupervisor, spec: InstanceRef): void {
    this.prints.set(supervisor, this.print(spec))
  }

  /** True when the sealed values `spec` uses are not the ones `supervisor` runs with. */
  changed(supervisor: InstanceSupervisor, spec: InstanceRef): boolean {
    return this.print(spec) !== this.prints.get(supervisor)
  }

  /** The secrets `spec` refers to that do not open with the node's key (none: it may start). */
  missing(spec: InstanceRef): string[] {
    const names = secretNames(spec.config)
    return names.length === 0 ? [] : this.store.open(spec.pipeline, names, this.identity).missing
  }

  isWaiting(supervisor: InstanceSupervisor): boolean {
    return this.waiting.has(supervisor)
  }

  setWaiting(supervisor: InstanceSupervisor, waiting: boolean): void {
    if (waiting) this.waiting.add(supervisor)
    else this.waiting.delete(supervisor)
  }

  /** The config an instance process gets: its references replaced by their values (never stored or reported). */
  resolve(spec: Omit<InstanceRef, 'config'>, config: Record<string, unknown>): Record<string, unknown> {
    const key = this.keyOf(spec)
    const names = secretNames(config)
    if (names.length === 0) {
      this.given.delete(key)
      return config
    }
    const {values} = this.store.open(spec.pipeline, names, this.identity)
    this.given.set(key, values)
    return resolveSecretRefs(config, values).value
  }

  /** An instance event (by its payload path) with every exact value it was given replaced by `[redacted:NAME]`. */
  redactEvent(path: readonly unknown[], event: SupervisorEvent): SupervisorEvent {
    const values = this.given.get(path.join('\u0000'))
    if (!values) return event
    switch (event.kind) {
      case 'log':
        return {...event, text: redactSecrets(event.text, values)}
      case 'payload':
        return {...event, data: redactDeep(event.data, values)}
      case 'notification':
        return {...event, message: redactSecrets(event.message, values), ...(event.info === undefined ? {} : {info: redactDeep(event.info, values)})}
      case 'crash':
      case 'iteration':
      case 'status':
        return event.error === undefined ? event : {...event, error: redactSecrets(event.error, values)}
      default:
        return event
    }
  }

  /** A text about an instance (its last error) without the values it was given. */
  redactText(spec: Omit<InstanceRef, 'config'>, text: string | null): string | null {
    const values = text === null ? undefined : this.given.get(this.keyOf(spec))
    return values && text !== null ? redactSecrets(text, values) : text
  }

  private print(spec: InstanceRef): string {
    return this.store.fingerprint(spec.pipeline, secretNames(spec.config))
  }

  private keyOf(spec: Omit<InstanceRef, 'config'>): string {
    return [this.alias, spec.pipeline, spec.signature, spec.instanceId].join('\u0000')
  }
}
