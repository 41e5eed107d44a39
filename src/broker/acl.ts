import {ExitCode, R1Error} from '../errors.js'
import {type Topics, topics as topicLayout} from '../protocol/topics.js'

/** A node reads its own config topic and publishes to the shared and targeted topics; a client the reverse. */
export type BrokerRole = 'node' | 'client'

/** Who a broker user is: the name it logs in with, its role and the r1 address it acts for. */
export interface BrokerIdentity {
  name: string
  role: BrokerRole
  address: string
}

/** One ACL entry: a topic filter (`+` stands for one level) the identity may read (subscribe) or write (publish). */
export interface AclRule {
  access: 'read' | 'write'
  topic: string
}

/**
 * The topics an identity may use under `root`, as filters (Mosquitto prints them as they are):
 * a node subscribes to its own config topic and publishes heartbeats, notifications, payloads and any
 * client's targeted payloads; a client subscribes to the shared topics and its own targeted topic and
 * publishes to any node's config topic.
 */
export function aclRules(identity: BrokerIdentity, root?: string): AclRule[] {
  const t = topicsUnder(root)
  if (identity.role === 'node') {
    return [
      {access: 'read', topic: t.config(identity.address)},
      ...[t.ctrl, t.notif, t.payloads, t.targeted('+')].map((topic) => ({access: 'write' as const, topic})),
    ]
  }
  return [
    ...[t.ctrl, t.notif, t.payloads, t.targeted(identity.address)].map((topic) => ({access: 'read' as const, topic})),
    {access: 'write', topic: t.config('+')},
  ]
}

/** The topic layout under `root`; a malformed root is a usage error. */
export function topicsUnder(root?: string): Topics {
  try {
    return topicLayout(root)
  } catch (error) {
    throw new R1Error(`--root: ${(error as Error).message}`, ExitCode.USAGE, {code: 'BROKER_TOPIC_ROOT', hint: 'e.g. --root naeural'})
  }
}

/**
 * Whether a user with these rules may subscribe to `filter`: only the exact topics its rules name (a wildcard
 * subscription would reach other identities' topics, so none is granted).
 */
export function maySubscribe(rules: readonly AclRule[], filter: string): boolean {
  return rules.some((rule) => rule.access === 'read' && !rule.topic.includes('+') && rule.topic === filter)
}

/** Whether a user with these rules may publish to `topic` (a concrete topic; `+` in a rule matches one non-empty level). */
export function mayPublish(rules: readonly AclRule[], topic: string): boolean {
  if (/[+#]/.test(topic)) return false
  const levels = topic.split('/')
  return rules.some((rule) => {
    if (rule.access !== 'write') return false
    const pattern = rule.topic.split('/')
    return pattern.length === levels.length && pattern.every((level, i) => (level === '+' ? levels[i] !== '' : level === levels[i]))
  })
}
