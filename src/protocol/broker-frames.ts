import {decrypt, encrypt} from './encryption.js'
import type {Identity} from './identity.js'
import {MAX_FRAME_BYTES, type PublicHeartbeat, PublicHeartbeatSchema} from './messages.js'
import {decodeSigned} from './wire.js'

/**
 * What a node publishes on a client's targeted topic (`<root>/<client address>/payloads`): every
 * client on a shared broker can read it, so the node's signed frame (exactly what a WebSocket
 * carries) travels encrypted to the client with Ratio1's scheme, numbered per client session so the
 * client notices a frame the broker dropped:
 *
 *   {EE_IS_ENCRYPTED: true, EE_SENDER: <node>, EE_DEST: <client>, SESSION_ID, EE_ENCRYPTED_DATA}
 *   EE_ENCRYPTED_DATA opens to {R1_FRAME_SEQ: n, R1_FRAME: "<signed frame text>"}
 *
 * The outer fields only route (which session of which client hears it); what is trusted is inside:
 * the ciphertext only the node or the client could make, and the frame the node signed.
 */

/** A frame for one client session, sealed by the node. */
export function sealFrame(frame: string | Buffer, frameSeq: number, route: {client: string; sessionId: string}, node: Identity): string {
  const inner = JSON.stringify({R1_FRAME_SEQ: frameSeq, R1_FRAME: typeof frame === 'string' ? frame : frame.toString('utf8')})
  return JSON.stringify({EE_IS_ENCRYPTED: true, EE_SENDER: node.address, EE_DEST: route.client, SESSION_ID: route.sessionId, EE_ENCRYPTED_DATA: encrypt(inner, route.client, node)})
}

/** The routing fields of a sealed frame, read without decrypting; undefined for anything else. */
export function frameRoute(text: string): {sender: string; sessionId: string; data: string} | undefined {
  if (text.length > 2 * MAX_FRAME_BYTES) return undefined
  let outer: unknown
  try {
    outer = JSON.parse(text)
  } catch {
    return undefined
  }
  if (!outer || typeof outer !== 'object') return undefined
  const {EE_IS_ENCRYPTED, EE_SENDER, SESSION_ID, EE_ENCRYPTED_DATA} = outer as Record<string, unknown>
  if (EE_IS_ENCRYPTED !== true || typeof EE_SENDER !== 'string' || typeof SESSION_ID !== 'string' || typeof EE_ENCRYPTED_DATA !== 'string') return undefined
  return {sender: EE_SENDER, sessionId: SESSION_ID, data: EE_ENCRYPTED_DATA}
}

/** Opens a sealed frame's data from `sender` (the node) with the client's key; throws DecryptionError or a plain Error when it is not one. */
export function openFrame(data: string, sender: string, client: Identity): {frameSeq: number; frame: string} {
  const inner = JSON.parse(decrypt(data, sender, client)) as {R1_FRAME_SEQ?: unknown; R1_FRAME?: unknown}
  if (!Number.isSafeInteger(inner.R1_FRAME_SEQ) || typeof inner.R1_FRAME !== 'string') throw new Error('a sealed frame holds {R1_FRAME_SEQ, R1_FRAME}')
  return {frameSeq: inner.R1_FRAME_SEQ as number, frame: inner.R1_FRAME}
}

/** A public heartbeat heard on `<root>/ctrl`: signed by the node it names (EE_ADDR), else undefined. */
export function decodePublicHeartbeat(text: string): PublicHeartbeat | undefined {
  if (text.length > MAX_FRAME_BYTES) return undefined
  const signed = decodeSigned(text)
  if (!signed.ok) return undefined
  const {EE_HASH: _h, EE_SIGN: _s, EE_SENDER: _e, SIGN_CANON_V: _v, ...rest} = signed.message
  const heartbeat = PublicHeartbeatSchema.safeParse(rest)
  return heartbeat.success && heartbeat.data.EE_ADDR === signed.sender ? heartbeat.data : undefined
}
