import {aclRules} from './acl.js'
import type {BrokerUser} from './users.js'

/**
 * A Mosquitto `acl_file` granting each user the same topics as the embedded broker does (acl.ts), with
 * the lines that set up Mosquitto's own password file: r1 keeps scrypt hashes Mosquitto cannot read,
 * so each password is set again with mosquitto_passwd (never printed here).
 */
export function mosquittoAcl(users: readonly BrokerUser[], options: {root?: string; usersFile: string}): string {
  const lines = [
    `# Mosquitto ACL for r1, from ${options.usersFile} (${users.length} user${users.length === 1 ? '' : 's'}).`,
    '# mosquitto.conf:',
    '#   allow_anonymous false',
    '#   password_file /etc/mosquitto/passwd',
    '#   acl_file /etc/mosquitto/r1.acl',
    '#   max_queued_messages 0',
    '#   max_inflight_messages 100',
    '# Passwords: r1 stores scrypt hashes that Mosquitto cannot read; set each one again',
    '# (the first with -c to create the file):',
    ...users.map((user) => `#   mosquitto_passwd /etc/mosquitto/passwd ${user.name}`),
  ]
  for (const user of users) {
    lines.push('', `# ${user.role} ${user.address}`, `user ${user.name}`)
    for (const rule of aclRules(user, options.root)) lines.push(`topic ${rule.access} ${rule.topic}`)
  }
  return lines.join('\n') + '\n'
}
