// Bundle upload slots against a real node: one sender's abandoned or refused uploads must not keep
// another sender from uploading.
import {createHash, randomBytes} from 'node:crypto'
import {afterAll, describe, expect, it} from 'vitest'
import {generateIdentity} from '../../src/protocol/identity.js'
import {AdvNode, Conn, roundTrip} from './harness.js'

describe('adversarial: bundle upload slots', () => {
  const deployer = generateIdentity()
  const hoarder = generateIdentity()
  let node: AdvNode | undefined
  afterAll(async () => node?.dispose())

  it("a sender's abandoned and refused uploads leave another sender's upload working", async () => {
    node = await AdvNode.start([deployer.address, hoarder.address])
    const hoarding = new Conn(node.url, node.address, 'hoarder')
    await hoarding.connect()
    // 20 uploads started (chunk 0 of 2) and never finished, then 4 refused oversized chunks.
    for (let i = 0; i < 24; i++) {
      const bytes = randomBytes(i < 20 ? 1024 : 600 * 1024)
      const hash = createHash('sha256').update(`abandoned ${i}`).digest('hex')
      await roundTrip(hoarding, hoarder, 'R1_BUNDLE_PUT', {HASH: hash, SIZE: 2 * 600 * 1024, INDEX: 0, COUNT: 2, DATA: bytes.toString('base64')}, node.address)
    }
    hoarding.close()

    const deploying = new Conn(node.url, node.address, 'deployer')
    await deploying.connect()
    const bundle = Buffer.from('export default {async process() { return {OK: 1} }}\n')
    const hash = createHash('sha256').update(bundle).digest('hex')
    const {answer} = await roundTrip(deploying, deployer, 'R1_BUNDLE_PUT', {HASH: hash, SIZE: bundle.length, INDEX: 0, COUNT: 1, DATA: bundle.toString('base64')}, node.address)
    deploying.close()
    expect(answer, (answer as {NOTIFICATION?: string} | undefined)?.NOTIFICATION).toMatchObject({EE_EVENT_TYPE: 'R1_REPLY', RESULT: {STORED: true}})
  })
})
