import type {RunnerEvent, UpdateDecision} from '../plugin/runner.js'

/** The messages between a supervisor (parent) and its instance host (child), over the fork IPC channel (JSON). */

export interface InstanceSpec {
  pipeline: string
  signature: string
  instanceId: string
  /** UPPERCASE instance config, INSTANCE_ID included; the copy sent to the child has its secret references resolved. */
  config: Record<string, unknown>
  /** Absolute path of the plugin bundle (an ES module), for project signatures. */
  bundlePath?: string
  /** Name of a built-in signature (CUSTOM_EXEC_01, PROCESS_APP_RUNNER), when no bundle. */
  builtin?: string
  /** sha256 of the files bundle the plugin ships, and the folder holding them unpacked (copied into the instance's run dir). */
  filesHash?: string
  filesDir?: string
  node: {address: string; alias: string}
  /** Emit PLUGIN_CONFIG_OK after the first good process (new or reconfigured instance). */
  announceConfig: boolean
  configHash?: string
  /** Back-off of the process loop after an exception in `process`. */
  exceptionBackoff: {baseMs: number; capMs: number}
  /** Environment for processes the instance starts itself (PROCESS_APP_RUNNER). */
  baseEnv: Record<string, string>
  /** Restart back-off of an app the instance runs itself (PROCESS_APP_RUNNER); the supervisor sets it. */
  restartBackoff?: {baseMs: number; capMs: number}
}

export type ParentMessage =
  | {t: 'start'; spec: InstanceSpec}
  | {t: 'config'; config: Record<string, unknown>; hash?: string}
  | {t: 'command'; id: number; name: string; params: unknown; hash?: string}
  | {t: 'input'; data: unknown}
  /** Ask the plugin's `beforeUpdate` hook about the instance's next config (null: it is removed). */
  | {t: 'beforeUpdate'; id: number; config: Record<string, unknown> | null}
  | {t: 'ping'; n: number}
  /** The parent has handled `batches` more batches and had an event-loop turn since: the host may send as many more. */
  | {t: 'ack'; batches: number}
  | {t: 'stop'}

export type ChildMessage =
  /** Messages queued during one event-loop turn of the host, in order (one IPC write instead of one per event). */
  | {t: 'batch'; messages: ChildMessage[]}
  | {t: 'ready'}
  /** A payload: the most frequent message, so the smallest (no RunnerEvent wrapper). */
  | {t: 'payload'; data: Record<string, unknown>}
  /** Any other event (notification, log). */
  | {t: 'event'; event: RunnerEvent}
  /** A `process` call started (the parent times it to detect a hang). */
  | {t: 'busy'; iteration: number}
  | {t: 'idle'; iteration: number; ok: boolean; error?: string}
  | {t: 'commandDone'; id: number; ok: boolean; error?: string}
  | {t: 'configDone'; ok: boolean; error?: string}
  | {t: 'updateDecision'; id: number; decision: UpdateDecision}
  | {t: 'pong'; n: number}
  /** The instance cannot run (bundle failed to load, init threw, uncaught error); the host exits next. */
  | {t: 'failed'; stage: 'load' | 'init' | 'crash'; error: string}
  /** A process group the instance started (PROCESS_APP_RUNNER): the parent kills it if it must kill the host. */
  | {t: 'group'; pid: number; active: boolean}
  /** The app a PROCESS_APP_RUNNER runs exited with a failure; it restarts after `restartInMs` (undefined: it does not). */
  | {t: 'appCrash'; error: string; restartInMs?: number}
  /** That app is running again. */
  | {t: 'appUp'}
  | {t: 'closed'}
