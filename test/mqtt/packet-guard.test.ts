// A broker (or whoever sits where the broker should be) that sends an MQTT packet far larger than any
// r1 frame: the client cuts the connection as soon as the packet's header arrives, instead of letting
// mqtt.js buffer up to 256 MiB first, and reconnects. The broker here is a raw TCP server on 127.0.0.1:0
// that speaks just enough MQTT 3.1.1 (CONNACK, PUBLISH) to be one.
import {once} from 'node:events'
import {createServer, type Server, type Socket} from 'node:net'
import {PassThrough} from 'node:stream'
import type {MqttClient} from 'mqtt'
import {afterEach, describe, expect, it} from 'vitest'
import {dialBroker, guardPacketSize, MAX_BROKER_PACKET_BYTES} from '../../src/transport/mqtt.js'
import {until} from '../runtime/helpers.js'

/** MQTT's variable-length integer. */
function remainingLength(n: number): Buffer {
  const bytes: number[] = []
  do {
    let byte = n % 128
    n = Math.floor(n / 128)
    if (n > 0) byte |= 0x80
    bytes.push(byte)
  } while (n > 0)
  return Buffer.from(bytes)
}

/** A QoS 0 PUBLISH packet. */
function publishPacket(topic: string, payload: string): Buffer {
  const body = Buffer.concat([Buffer.from([topic.length >> 8, topic.length & 0xff]), Buffer.from(topic), Buffer.from(payload)])
  return Buffer.concat([Buffer.from([0x30]), remainingLength(body.length), body])
}

const CONNACK = Buffer.from([0x20, 0x02, 0x00, 0x00])
const SUBACK = (id: number) => Buffer.from([0x90, 0x03, id >> 8, id & 0xff, 0x00])

describe('the size of an MQTT packet from the broker', () => {
  it('passes packets of every size up to the bound, split anywhere, and refuses the first header over it', async () => {
    const stream = new PassThrough()
    const failed = new Promise<Error & {code?: string}>((resolve) => stream.on('error', resolve))
    guardPacketSize(stream, 1000)
    const packets = [Buffer.from([0xd0, 0x00]), publishPacket('t', 'x'.repeat(200)), publishPacket('a/b', 'y'.repeat(1000 - 5)), CONNACK]
    // one byte at a time: every header and length byte arrives on its own
    for (const byte of Buffer.concat(packets)) stream.write(Buffer.of(byte))
    expect(stream.destroyed).toBe(false)
    // in one chunk with the next packets
    stream.write(Buffer.concat(packets))
    expect(stream.destroyed).toBe(false)
    // a header over the bound, its body never sent
    stream.write(Buffer.concat([Buffer.from([0x30]), remainingLength(1001)]))
    expect(stream.destroyed).toBe(true)
    const error = await failed
    expect(error.code).toBe('R1_PACKET_TOO_LARGE')
    expect(error.message).toMatch(/1001 bytes arrived, over the 1000-byte limit/)
  })

  it('takes a four-byte length within the bound', () => {
    const stream = new PassThrough()
    stream.on('error', () => undefined)
    guardPacketSize(stream, 3 * 1024 * 1024)
    // 2 MiB: 0x80 0x80 0x80 0x01, the body not sent
    stream.write(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x01]))
    expect(stream.destroyed).toBe(false)
  })

  it('refuses a length of more than four bytes (not MQTT)', () => {
    const stream = new PassThrough()
    stream.on('error', () => undefined)
    guardPacketSize(stream, 1000)
    stream.write(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x80]))
    expect(stream.destroyed).toBe(true)
  })

  describe('from a broker that sends one', () => {
    let server: Server | undefined
    let client: MqttClient | undefined
    afterEach(async () => {
      client?.end(true)
      if (server) await new Promise((resolve) => server!.close(resolve))
      client = undefined
      server = undefined
    })

    it('is cut as its header arrives; the client reconnects, and takes the next message', async () => {
      const connections: Socket[] = []
      let streamed = 0
      const budget = 32 * 1024 * 1024
      server = createServer((socket) => {
        connections.push(socket)
        socket.on('error', () => undefined)
        socket.on('data', async (data) => {
          const type = data[0]! >> 4
          if (type === 1) socket.write(CONNACK)
          if (type === 8) socket.write(SUBACK(data.readUInt16BE(2)))
          if (type !== 1) return
          if (connections.length === 1) {
            // the first connection: a PUBLISH that says 200 MiB, its body streamed until the client hangs up
            socket.write(Buffer.concat([Buffer.from([0x30]), remainingLength(200 * 1024 * 1024)]))
            const chunk = Buffer.alloc(1024 * 1024, 0x61)
            while (!socket.destroyed && streamed < budget) {
              await new Promise<void>((resolve) => socket.write(chunk, () => resolve()))
              streamed += chunk.length
            }
          } else {
            socket.write(publishPacket('naeural/x/config', 'after the reconnection'))
          }
        })
      })
      server.listen(0, '127.0.0.1')
      await once(server, 'listening')
      const {port} = server.address() as {port: number}
      const problems: string[] = []
      const messages: string[] = []
      client = await dialBroker(
        {url: `mqtt://127.0.0.1:${port}`},
        {clientId: 'r1c-guard-test', onMessage: (_topic, payload) => messages.push(payload.toString()), onOffline: (error) => error && problems.push(error.message)},
      )
      await until(() => messages.length > 0, 20_000, 'the message after the reconnection')
      expect(messages).toEqual(['after the reconnection'])
      expect(connections.length).toBeGreaterThanOrEqual(2)
      // cut long before the 32 MiB streamed (unguarded, mqtt.js buffers them all, and more)
      expect(streamed).toBeLessThan(budget)
      expect(problems.some((p) => p.includes(`over the ${MAX_BROKER_PACKET_BYTES}-byte limit`))).toBe(true)
    })
  })
})
