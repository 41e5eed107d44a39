import {definePlugin} from 'r1/plugin'

/**
 * MY_PLUGIN's instance config as declared in config.yaml.
 * @typedef {{THRESHOLD: number, UNIT: 'C' | 'F'}} SensorConfig
 */

/**
 * A simulated sensor: 20, 22, … 38 °C, then again from 20. Replace it with a real reading.
 * @param {number} iteration
 */
export function readCelsius(iteration) {
  return 20 + 2 * ((iteration - 1) % 10)
}

export default definePlugin(
  /** @type {import('r1/plugin').PluginDefinition<SensorConfig>} */ ({
    init(ctx) {
      ctx.log.info(`${ctx.signature}/${ctx.instanceId} watching, alert above ${ctx.config.THRESHOLD} °${ctx.config.UNIT}`)
    },

    // Called every PROCESS_DELAY seconds; the returned object is emitted as a payload.
    process(ctx) {
      const celsius = readCelsius(ctx.iteration)
      const temperature = ctx.config.UNIT === 'F' ? Math.round((celsius * 9) / 5 + 32) : celsius
      const alert = temperature > ctx.config.THRESHOLD
      if (alert) {
        ctx.notify({message: `Temperature ${temperature} °${ctx.config.UNIT} is above ${ctx.config.THRESHOLD}`, type: 'ABNORMAL FUNCTIONING'})
      }
      return {TEMPERATURE: temperature, UNIT: ctx.config.UNIT, ALERT: alert}
    },

    // `r1 command <pipeline> <instance> READ` answers with a reading without emitting it.
    command(ctx, name) {
      if (name !== 'READ') throw new Error(`Unknown command ${name}: this plugin knows READ`)
      return {TEMPERATURE: readCelsius(ctx.iteration + 1), UNIT: 'C'}
    },
  }),
)
