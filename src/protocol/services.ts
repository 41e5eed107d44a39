import {z} from 'zod'
import {isStandardBase64} from './base64.js'

/**
 * The CStore and R1FS actions (PROTOCOL.md, "CStore and R1FS"): an allow-listed sender reads and writes a node's
 * key-value store and file store over the signed protocol (`r1 cstore …`, `r1 r1fs …`). Files travel
 * in chunks of at most R1FS_CHUNK_BYTES raw bytes, so any size up to the node's quota fits the frame limit.
 */

/** Raw bytes per R1FS chunk, both ways (base64 inflates by 4/3; the envelope stays under the 1 MiB frame). */
export const R1FS_CHUNK_BYTES = 512 * 1024
/** Chunks in one R1FS upload: 64 GiB at most, far above any quota (the node's quota is the real bound). */
const MAX_R1FS_CHUNKS = 131_072
/** Entries per R1_R1FS_LS answer; NEXT continues the listing. */
export const R1FS_LIST_PAGE = 500

/** A CStore key, hash key or field: any non-empty string (the node never uses it as a file name). */
const StoreKey = z.string().min(1).max(1024)
const Cid = z.string().min(1).max(200)
const Base64 = z.string().refine(isStandardBase64, 'expected standard base64')
/** The secret an R1FS file is encrypted with (AES-256-GCM keyed by it); a payload holding one must travel encrypted. */
const Secret = z.string().min(1).max(1024)
const Filename = z.string().min(1).max(255).refine((name) => !/[/\\\0]/.test(name), 'a file name, without / or \\')

export const CStoreGetSchema = z.strictObject({KEY: StoreKey})
/** VALUE: any JSON; null deletes the key. */
export const CStoreSetSchema = z.strictObject({KEY: StoreKey, VALUE: z.json()})
export const CStoreHGetSchema = z.strictObject({HKEY: StoreKey, FIELD: StoreKey})
/** VALUE: any JSON; null deletes the field. */
export const CStoreHSetSchema = z.strictObject({HKEY: StoreKey, FIELD: StoreKey, VALUE: z.json()})
export const CStoreHashSchema = z.strictObject({HKEY: StoreKey})

/**
 * R1_R1FS_ADD: chunk INDEX of COUNT of one upload, sent in order (a chunk sent again is accepted once).
 * UPLOAD is the client's id of this upload; SHA256 the whole file's, checked before it is stored.
 */
export const R1fsAddSchema = z
  .strictObject({
    UPLOAD: z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, 'expected an upload id of 8 to 64 letters, digits, _ or -'),
    FILENAME: Filename,
    SIZE: z.number().int().nonnegative(),
    SHA256: z.string().regex(/^[0-9a-f]{64}$/, 'expected a lowercase hex sha256'),
    INDEX: z.number().int().nonnegative(),
    COUNT: z.number().int().positive().max(MAX_R1FS_CHUNKS),
    DATA: Base64,
    SECRET: Secret.optional(),
  })
  .refine((chunk) => chunk.INDEX < chunk.COUNT, {message: 'INDEX must be below COUNT', path: ['INDEX']})
  .refine((chunk) => chunk.COUNT === Math.max(1, Math.ceil(chunk.SIZE / R1FS_CHUNK_BYTES)), {message: `COUNT must be SIZE / ${R1FS_CHUNK_BYTES} rounded up (1 for an empty file)`, path: ['COUNT']})
export type R1fsAdd = z.infer<typeof R1fsAddSchema>

/** R1_R1FS_GET: up to R1FS_CHUNK_BYTES of a file from OFFSET (0 for the first chunk). */
export const R1fsGetSchema = z.strictObject({CID: Cid, SECRET: Secret.optional(), OFFSET: z.number().int().nonnegative()})
/** R1_R1FS_LS: the stored files in CID order, after AFTER (a previous answer's NEXT). */
export const R1fsListSchema = z.strictObject({AFTER: Cid.optional()}).nullish()
export const R1fsRmSchema = z.strictObject({CID: Cid})

/** The service actions and their payloads, merged into messages.ts's table. */
export const ServicePayloadSchemas = {
  R1_CSTORE_GET: CStoreGetSchema,
  R1_CSTORE_SET: CStoreSetSchema,
  R1_CSTORE_HGET: CStoreHGetSchema,
  R1_CSTORE_HSET: CStoreHSetSchema,
  R1_CSTORE_HGETALL: CStoreHashSchema,
  R1_CSTORE_HKEYS: CStoreHashSchema,
  R1_R1FS_ADD: R1fsAddSchema,
  R1_R1FS_GET: R1fsGetSchema,
  R1_R1FS_LS: R1fsListSchema,
  R1_R1FS_RM: R1fsRmSchema,
} as const
export type ServiceAction = keyof typeof ServicePayloadSchemas
export const SERVICE_ACTIONS: ReadonlySet<string> = new Set(Object.keys(ServicePayloadSchemas))

const Json = z.json()

export const ServiceResultSchemas = {
  /** VALUE null: the key is not set. */
  R1_CSTORE_GET: z.object({KEY: z.string(), VALUE: Json}),
  R1_CSTORE_SET: z.object({KEY: z.string(), STORED: z.boolean()}),
  R1_CSTORE_HGET: z.object({HKEY: z.string(), FIELD: z.string(), VALUE: Json}),
  R1_CSTORE_HSET: z.object({HKEY: z.string(), FIELD: z.string(), STORED: z.boolean()}),
  R1_CSTORE_HGETALL: z.object({HKEY: z.string(), FIELDS: z.record(z.string(), Json)}),
  R1_CSTORE_HKEYS: z.object({HKEY: z.string(), FIELDS: z.array(z.string())}),
  /** CID: null until the last chunk is in, then the stored file's content address. */
  R1_R1FS_ADD: z.object({UPLOAD: z.string(), RECEIVED: z.number().int(), COUNT: z.number().int(), CID: z.string().nullable()}),
  /** DATA: standard base64 of the bytes from OFFSET (at most R1FS_CHUNK_BYTES; empty past the end). null: no such file, or the wrong secret. */
  R1_R1FS_GET: z.object({CID: z.string(), FILENAME: z.string(), SIZE: z.number().int().nonnegative(), OFFSET: z.number().int().nonnegative(), DATA: z.string()}).nullable(),
  R1_R1FS_LS: z.object({
    FILES: z.array(z.object({CID: z.string(), FILENAME: z.string(), SIZE: z.number().int().nonnegative(), ENCRYPTED: z.boolean(), ADDED: z.string()})),
    /** Pass as AFTER for the next page; null on the last one. */
    NEXT: z.string().nullable(),
  }),
  R1_R1FS_RM: z.object({CID: z.string(), DELETED: z.boolean()}),
} as const satisfies Record<ServiceAction, z.ZodType>
