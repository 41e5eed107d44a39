/** Ratio1 notification codes (confirmations are notifications matched by path and code). */
export const NotificationCode = {
  PIPELINE_OK: 1,
  PIPELINE_FAILED: -1,
  PIPELINE_DATA_OK: 2,
  PIPELINE_DATA_FAILED: -2,
  PIPELINE_ARCHIVE_OK: 4,
  PIPELINE_ARCHIVE_FAILED: -4,
  PIPELINE_DELETE_OK: 5,
  PIPELINE_DELETE_FAILED: -5,
  PLUGIN_CONFIG_OK: 100,
  PLUGIN_CONFIG_FAILED: -100,
  PLUGIN_INSTANCE_COMMAND_OK: 101,
  PLUGIN_INSTANCE_COMMAND_FAILED: -101,
  PLUGIN_PAUSE_OK: 102,
  PLUGIN_PAUSE_FAILED: -102,
  PLUGIN_RESUME_OK: 103,
  PLUGIN_RESUME_FAILED: -103,
  PLUGIN_DELETE_OK: 107,
  PLUGIN_DELETE_FAILED: -107,
  /** A plugin's `health` hook changed its answer: INFO {HEALTH: ok|degraded|failed, REASON?}. */
  PLUGIN_HEALTH: 110,
  /** A plugin's `beforeUpdate` hook deferred an update: INFO {DEFER_SECONDS, REASON?}; the node asks again then. */
  PLUGIN_UPDATE_DEFERRED: 111,
  /** Plugin code threw (process/init/command). */
  PLUGIN_EXCEPTION: -200,
  /** Instance process crashed/exited and is restarting. */
  PLUGIN_CRASHED: -201,
  /** An instance logged faster than its log rate: lines were dropped (INFO.DROPPED counts them). */
  PLUGIN_LOG_DROPPED: -202,
  COMM_RECEIVED_BAD_COMMAND: -5000,
  COMM_COMMAND_OK: 5000,
} as const
export type NotificationCodeName = keyof typeof NotificationCode

/** Ratio1's NOTIFICATION_TYPE values. */
export const NotificationType = {
  NORMAL: 'NORMAL',
  ABNORMAL: 'ABNORMAL FUNCTIONING',
  EXCEPTION: 'EXCEPTION',
} as const
export type NotificationType = (typeof NotificationType)[keyof typeof NotificationType]

/** What a plugin's `health` hook answers (heartbeats carry the last answer as HEALTH). */
export const HealthStatus = ['ok', 'degraded', 'failed'] as const
export type HealthStatus = (typeof HealthStatus)[number]

/** Per-instance statuses in heartbeats and `r1 status` (ARCHITECTURE.md §4). */
export const InstanceStatus = ['starting', 'running', 'restarting', 'error', 'stopped', 'paused', 'invalid_config'] as const
export type InstanceStatus = (typeof InstanceStatus)[number]
