/**
 * Restart intensity, exactly as OTP's `add_restart`: the new restart is
 * recorded first, restarts older than the window are dropped, and the
 * supervisor gives up when more than `maxRestarts` remain. The window is
 * inclusive (`now - t <= period`) and measured in milliseconds on Effect's
 * Clock, so sub-second periods work under TestClock (OTP counts whole
 * monotonic seconds; see the DynamicSupervisor docs).
 *
 * @internal
 */

/** @internal */
export interface RestartWindow {
  /** restart timestamps (ms), oldest first */
  readonly times: Array<number>
}

/** @internal */
export const makeWindow = (): RestartWindow => ({ times: [] })

/**
 * Records a restart at `now` and tells whether it is allowed (`true`) or
 * exceeds the intensity (`false`). Mutates the window.
 *
 * @internal
 */
export const addRestart = (window: RestartWindow, now: number, maxRestarts: number, periodMillis: number): boolean => {
  const times = window.times
  times.push(now)
  let drop = 0
  while (drop < times.length && now - times[drop]! > periodMillis) drop++
  if (drop > 0) times.splice(0, drop)
  return times.length <= maxRestarts
}
