// Child process for journal crash tests (not a test file): appends events and reports progress on stdout.
//   loop <dir>           append forever; after each flush print "flushed <seq>"
//   fill <dir> <count>   append <count> events of ~1 KiB; print "error <code> <fromSeq>-<toSeq>" per failed write, then "done <lastSeq>"
import {Journal} from '../../src/runtime/journal.js'
import {payload} from './helpers.js'

const [mode, dir, countText] = process.argv.slice(2)
const print = (line: string) => process.stdout.write(line + '\n')

if (mode === 'loop') {
  const journal = await Journal.open(dir!, {segmentBytes: 256 * 1024, onWarning: (m) => print(`warning ${m}`)})
  let seq = journal.lastSeq()
  const batch = () => {
    for (let i = 0; i < 200; i++) journal.append(payload(++seq, {FILL: 'y'.repeat(seq % 300)}))
    journal.flush()
    print(`flushed ${seq}`)
    setImmediate(batch)
  }
  print(`start ${seq}`)
  batch()
} else if (mode === 'fill') {
  const journal = await Journal.open(dir!, {
    flushBytes: 8 * 1024,
    onError: (e) => {
      const details = e.details as {fromSeq: number; toSeq: number; errno: string}
      print(`error ${details.errno} ${details.fromSeq}-${details.toSeq}`)
    },
  })
  const count = Number(countText)
  for (let seq = journal.lastSeq() + 1, n = 0; n < count; n++, seq++) journal.append(payload(seq, {FILL: 'z'.repeat(1000)}))
  await journal.close()
  print(`done ${journal.lastSeq()}`)
} else {
  throw new Error(`unknown mode ${mode}`)
}
