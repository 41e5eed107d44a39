import {readFileSync} from 'node:fs'
import {describe, expect, it} from 'vitest'
import type {z} from 'zod'
import {Actions, CommandEnvelopeSchema, PayloadSchemas, RejectionReason, RejectionSchema, ReplySchema, ResultSchemas} from '../../src/protocol/messages.js'

const doc = readFileSync(new URL('../../src/protocol/PROTOCOL.md', import.meta.url), 'utf8')

/** Every object key reachable in a zod schema (objects, arrays, optionals, unions, pipes). */
function fieldNames(schema: z.ZodType, out = new Set<string>()): Set<string> {
  const def = (schema as unknown as {_zod: {def: Record<string, any>}})._zod.def
  switch (def.type) {
    case 'object':
      for (const [key, value] of Object.entries(def.shape as Record<string, z.ZodType>)) {
        out.add(key)
        fieldNames(value, out)
      }
      break
    case 'array':
      fieldNames(def.element, out)
      break
    case 'optional':
    case 'nullable':
    case 'default':
      fieldNames(def.innerType, out)
      break
    case 'union':
      for (const option of def.options) fieldNames(option, out)
      break
    case 'pipe':
      fieldNames(def.in, out)
      break
  }
  return out
}

describe('PROTOCOL.md is in step with the schemas', () => {
  const actionRows = [...doc.matchAll(/^\| `([A-Z0-9_]+)` \| /gm)].map((m) => m[1])
  const section4 = doc.slice(doc.indexOf('## 4. Actions'), doc.indexOf('### 4.1'))
  const documentedActions = [...section4.matchAll(/^\| `([A-Z0-9_]+)` \|/gm)].map((m) => m[1])

  it('every ACTION of the schemas has a row in the action table, and every row is an ACTION', () => {
    expect(new Set(documentedActions)).toEqual(new Set(Actions))
    expect(actionRows.length).toBeGreaterThan(Actions.length)
  })

  it.each(Actions.map((a) => [a]))('every payload field of %s is documented', (action) => {
    for (const field of fieldNames(PayloadSchemas[action] as z.ZodType)) expect(doc, `${action} field ${field}`).toContain(field)
  })

  // FULL_HEARTBEAT's RESULT, and R1_STATE's HEARTBEAT, are a heartbeat event (events.ts), documented with the events
  it.each((['R1_STATE', 'R1_BUNDLE_HAS', 'R1_BUNDLE_PUT', 'R1_SUBSCRIBE'] as const).map((a) => [a]))('every RESULT field of %s is documented', (action) => {
    const schema = action === 'R1_STATE' ? ResultSchemas.R1_STATE.omit({HEARTBEAT: true}) : ResultSchemas[action]
    for (const field of fieldNames(schema as z.ZodType)) expect(doc, `${action} RESULT field ${field}`).toContain(field)
    if (action === 'R1_STATE') expect(doc).toContain('`HEARTBEAT`')
  })

  it('every envelope, reply and rejection field is documented', () => {
    for (const schema of [CommandEnvelopeSchema, ReplySchema, RejectionSchema]) {
      for (const field of fieldNames(schema)) expect(doc, field).toContain(`\`${field}\``)
    }
  })

  it('every rejection REASON has a row, and every row is a REASON', () => {
    const section6 = doc.slice(doc.indexOf('| REASON | when |'), doc.indexOf('## 7.'))
    const rows = [...section6.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1])
    expect(new Set(rows)).toEqual(new Set(RejectionReason))
  })
})
