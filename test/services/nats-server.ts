// Types for bench/nats-server.js (plain JavaScript, shared by the bench and these tests).
export interface NatsServer {
  url: string
  stop(): Promise<void>
}

const shared = (await import('../../bench/nats-server.js' as string)) as {natsMissing(): string | undefined; startNatsServer(): Promise<NatsServer>}

export const {natsMissing, startNatsServer} = shared
