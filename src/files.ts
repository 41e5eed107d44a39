import {randomBytes} from 'node:crypto'
import {mkdir, open, readdir, readFile, rename, rm} from 'node:fs/promises'
import {dirname, join} from 'node:path'

/**
 * Writes a file so that readers see the old or the new content, never a torn one:
 * temp file in the same directory, fsync, rename, fsync the directory.
 * On any failure (e.g. a full disk) the old file is untouched and the temp file removed.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, options: {mode?: number} = {}): Promise<void> {
  const dir = dirname(path)
  const temp = join(dir, `.${randomBytes(6).toString('hex')}.tmp`)
  const create = () => open(temp, 'wx', options.mode ?? 0o644)
  try {
    // the folder is made when it is missing (the first write), not asked for on every write
    const handle = await create().catch(async (error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error
      await mkdir(dir, {recursive: true})
      return create()
    })
    try {
      await handle.writeFile(data)
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(temp, path)
  } catch (error) {
    await rm(temp, {force: true})
    throw error
  }
  await syncDir(dir)
}

/** fsyncs a folder, so that a rename or unlink in it survives a power loss (best effort where folders cannot be synced). */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r').catch(() => undefined)
  if (!handle) return
  try {
    await handle.sync().catch(() => undefined)
  } finally {
    await handle.close()
  }
}

/**
 * The `.json` files of a folder of records written with writeFileAtomic (one per pipeline, …), sorted,
 * with their text; what an interrupted write left (a `.…tmp` before its rename) is removed. A missing
 * folder has none; any other error is thrown.
 */
export async function readRecordFiles(dir: string): Promise<Array<{file: string; text: string}>> {
  let entries: string[]
  try {
    entries = await readdir(dir)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw error
  }
  const out: Array<{file: string; text: string}> = []
  for (const entry of entries.sort()) {
    const file = join(dir, entry)
    if (entry.startsWith('.') && entry.endsWith('.tmp')) await rm(file, {force: true})
    else if (entry.endsWith('.json')) out.push({file, text: await readFile(file, 'utf8')})
  }
  return out
}

/** `text` parsed as JSON, or undefined when it is not JSON: the caller's schema then says what the file should be. */
export function parseJsonOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}
