/**
 * Ratio1's MQTT topic layout, under a configurable root (default `naeural`). Nodes and clients meet
 * on a broker: a node reads its own config topic; heartbeats, notifications and payloads go to the
 * shared topics; what is meant for one client (replies, confirmations, subscription streams) goes to
 * that client's targeted payloads topic.
 */

export const DEFAULT_TOPIC_ROOT = 'naeural'

export interface Topics {
  readonly root: string
  /** Commands for one node: `<root>/<node address>/config`. */
  config(nodeAddress: string): string
  /** Heartbeats of every node: `<root>/ctrl`. */
  readonly ctrl: string
  /** Notifications of every node: `<root>/notif`. */
  readonly notif: string
  /** Payloads of every node: `<root>/payloads`. */
  readonly payloads: string
  /** What is meant for one client: `<root>/<client address>/payloads`. */
  targeted(clientAddress: string): string
}

/** A topic root: words separated by `/` (no wildcards, no leading or trailing `/`). */
export const TOPIC_ROOT_PATTERN = /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/

export function topics(root: string = DEFAULT_TOPIC_ROOT): Topics {
  if (!TOPIC_ROOT_PATTERN.test(root)) throw new Error(`topic root "${root}" must be words separated by "/" (no wildcards, no leading or trailing "/")`)
  return {
    root,
    config: (nodeAddress) => `${root}/${nodeAddress}/config`,
    ctrl: `${root}/ctrl`,
    notif: `${root}/notif`,
    payloads: `${root}/payloads`,
    targeted: (clientAddress) => `${root}/${clientAddress}/payloads`,
  }
}
