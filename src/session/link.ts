import WebSocket from 'ws'
import {ExitCode, R1Error} from '../errors.js'
import {MAX_FRAME_BYTES, SUBPROTOCOL} from '../protocol/messages.js'

/**
 * The session's seam to whatever carries frames to one node: a WebSocket (below) or a client session
 * on an MQTT broker (broker-link.ts). The session does everything else the same way over both.
 */

/** What the link tells the session. */
export interface LinkHandlers {
  /** The link exists (before any frame). */
  created(link: FrameLink): void
  /** One frame's text, as the node signed it. */
  frame(text: string): void
  /** The link is gone (code and reason as a WebSocket close gives them). */
  closed(code: number, reason: string): void
  /** The node answered a liveness probe (or sent anything). */
  alive(): void
  /** Frames went missing on the way (a broker dropped some): what has no answer is sent again, and a subscription resumes from its last seq. */
  lost(): void
  /** What was sent may have been lost (a broker that restarted): what has no answer is sent again. Returns whether anything was. */
  resend(): boolean
}

export interface FrameLink {
  readonly open: boolean
  /** Not open, but reconnecting by itself (a broker client soon after a drop): what is sent meanwhile waits for it. */
  readonly resuming?: boolean
  /** Why it is not open, when it knows (a broker connection lost since …). */
  readonly down?: string
  /** Frames the medium lost on their way here lately, when it can lose some (a broker over its queue limit). */
  readonly losses?: string
  /** Sends a frame; one that waits for a reconnection is sent then only if `wanted` still says so. */
  send(text: string, wanted?: () => boolean): Promise<void>
  /**
   * A frame came from the node before the one with its hello, which was lost on the way (a broker dropped it):
   * the session's greeting again, until the node answers it with its hello (links that can lose frames only).
   */
  greetAgain?(): void
  /** A liveness probe; `alive` follows when answered. */
  ping(): void
  /** Stops reading (back-pressure while the subscriber is slow); `resume` reads again. */
  pause(): void
  resume(): void
  /** Closes politely, resolving when done. */
  close(): Promise<void>
  /** Drops the link at once; `closed` follows. */
  terminate(): void
}

export interface LinkDialer {
  /** Where the node is, for messages (`ws://…`, or the broker URL). */
  readonly url: string
  /**
   * A shared medium (a broker): everyone reads every topic, so commands are encrypted to the node
   * unless public; and nothing tells the node when the client leaves.
   */
  readonly shared: boolean
  /** Opens a link; `probe` sends the node a liveness probe (R1_PING) on a link, for links whose node speaks only when spoken to. */
  dial(handlers: LinkHandlers, probe: (link: FrameLink) => Promise<void>): Promise<FrameLink>
}

function unreachable(message: string, hint?: string, cause?: unknown): R1Error {
  return new R1Error(message, ExitCode.UNREACHABLE, {code: 'NODE_UNREACHABLE', hint: hint ?? 'Check the URL and that the node is running (r1 node start).', cause})
}

const CERTIFICATE_ERRORS = /SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|CERT_|ERR_TLS_CERT|HOSTNAME_MISMATCH|ALTNAME/

/** Why a connection failed, with the hint that fixes it: a certificate this machine does not trust needs --ca. */
export function connectionError(url: string, error: Error & {code?: string}): R1Error {
  if (url.startsWith('wss:') && (CERTIFICATE_ERRORS.test(error.code ?? '') || /certificate/i.test(error.message))) {
    return unreachable(
      `Cannot connect to ${url}: its TLS certificate is not trusted (${error.code ?? error.message})`,
      "A node with a self-signed certificate needs it trusted: pass --ca <file> with the node's certificate (its --tls-cert), or set `ca: <file>` on the target in config.yaml.",
      error,
    )
  }
  return unreachable(`Cannot connect to ${url}: ${error.message}`, undefined, error)
}

/** A direct WebSocket to a node (`ws://` or `wss://`, subprotocol r1.v1). */
export function webSocketDialer(url: string, options: {connectTimeoutMs: number; ca?: string | Buffer; insecure?: boolean}): LinkDialer {
  return {
    url,
    shared: false,
    dial: (handlers) =>
      new Promise<FrameLink>((resolve, reject) => {
        let ws: WebSocket
        try {
          ws = new WebSocket(url, SUBPROTOCOL, {
            maxPayload: MAX_FRAME_BYTES * 2,
            perMessageDeflate: false,
            handshakeTimeout: options.connectTimeoutMs,
            ...(options.ca ? {ca: options.ca} : {}),
            ...(options.insecure ? {rejectUnauthorized: false} : {}),
          })
        } catch (error) {
          reject(unreachable(`Cannot connect to ${url}: ${(error as Error).message}`, 'A node URL looks like ws://host:port or wss://host:port.'))
          return
        }
        let opened = false
        const link = webSocketLink(ws, url)
        handlers.created(link)
        const fail = (error: R1Error) => {
          if (opened) return
          ws.terminate()
          reject(error)
        }
        ws.once('error', (error) => fail(connectionError(url, error)))
        ws.once('unexpected-response', (_req, res) => fail(unreachable(`${url} refused the WebSocket upgrade (HTTP ${res.statusCode} ${res.statusMessage ?? ''})`.trim())))
        ws.on('message', (data) => handlers.frame(data.toString()))
        ws.on('pong', () => handlers.alive())
        ws.once('close', (code, reason) => {
          if (!opened) fail(unreachable(`${url} closed the connection (${code}${reason.length ? ` ${reason}` : ''})`))
          else handlers.closed(code, reason.toString())
        })
        ws.once('open', () => {
          opened = true
          ws.removeAllListeners('error')
          ws.on('error', () => undefined) // 'close' follows and handles it
          resolve(link)
        })
      }),
  }
}

function webSocketLink(ws: WebSocket, url: string): FrameLink {
  return {
    get open() {
      return ws.readyState === WebSocket.OPEN
    },
    send: (text) => {
      if (ws.readyState !== WebSocket.OPEN) return Promise.reject(unreachable(`Not connected to ${url}`))
      return new Promise<void>((resolve, reject) => ws.send(text, (error) => (error ? reject(unreachable(`Sending to ${url} failed: ${error.message}`)) : resolve())))
    },
    ping: () => {
      try {
        ws.ping()
      } catch {
        // already closing: 'close' follows
      }
    },
    pause: () => ws.pause(),
    resume: () => ws.resume(),
    close: () => {
      if (ws.readyState === WebSocket.CLOSED) return Promise.resolve()
      return new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          ws.terminate()
          resolve()
        }, 1000)
        ws.once('close', () => {
          clearTimeout(timer)
          resolve()
        })
        ws.close(1000, 'bye')
      })
    },
    terminate: () => ws.terminate(),
  }
}
