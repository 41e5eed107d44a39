import {ExitCode, R1Error} from '../errors.js'
import {generateIdentity, isAddress} from '../protocol/identity.js'
import {Session} from './session.js'

/** What a node says about itself in its signed hello: enough to pin it as a target. */
export interface NodeInfo {
  url: string
  /** The address that signed the hello (verified): what a target's `address` must be. */
  address: string
  alias: string
  version: string | null
  /** The node's last event seq when it answered. */
  lastSeq: number
}

/**
 * Connects to `url`, reads the node's signed hello and closes; sends no command (no key needed).
 * With `expected`, a node that proves another address is an identity mismatch (exit 4).
 */
export async function nodeInfo(url: string, options: {expected?: string; ca?: string | Buffer; connectTimeoutMs?: number} = {}): Promise<NodeInfo> {
  if (options.expected !== undefined && !isAddress(options.expected)) {
    throw new R1Error(`"${options.expected}" is not a node address`, ExitCode.USAGE, {code: 'BAD_ADDRESS', hint: 'A node address looks like 0xai_A2pP… (44 characters after 0xai_).'})
  }
  const session = await Session.connect({
    url,
    nodeAddress: options.expected,
    identity: generateIdentity(), // never used: nothing is sent
    connectTimeoutMs: options.connectTimeoutMs,
    ...(options.ca ? {ca: options.ca} : {}),
  })
  try {
    return {url, address: session.address, alias: session.alias, version: session.nodeVersion, lastSeq: session.nodeLastSeq}
  } finally {
    await session.close()
  }
}
