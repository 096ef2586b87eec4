/**
 * The one restart policy every supervisor kind accepts and interprets here:
 * intensity (`maxRestarts` in `maxSeconds`, OTP's `add_restart`), an optional
 * backoff `Schedule` per child, and the stable period after which a child's
 * backoff starts afresh. Time is the Clock's monotonic reading, in ms.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Pull from "effect/Pull"
import * as Schedule from "effect/Schedule"
import { InvalidOptions } from "../Errors.ts"
import { checkSupervisorOptions } from "./options.ts"
import { addRestart, makeWindow, type RestartWindow } from "./restartWindow.ts"

/** The restart options as users write them (every supervisor's Options extends this). @internal */
export interface RestartOptions {
  readonly maxRestarts?: number | undefined
  readonly maxSeconds?: number | undefined
  readonly restartBackoff?: Schedule.Schedule<unknown, number> | undefined
  readonly restartBackoffResetAfter?: Duration.Input | undefined
}

/** The decoded policy. @internal */
export interface RestartPolicy {
  readonly maxRestarts: number
  readonly maxSeconds: number
  readonly backoff: Schedule.Schedule<unknown, number> | undefined
  readonly resetAfterMillis: number
}

/** Marks a backoff schedule built with bad options (a Schedule cannot fail to be built). @internal */
export const InvalidBackoff = "~effect-otp/InvalidBackoff"

/** Reads a Duration.Input as milliseconds; NaN for anything that is not a duration (NaN included). @internal */
export const inputMillis = (d: unknown): number => {
  if (typeof d === "number" && Number.isNaN(d)) return Number.NaN
  const o = Duration.fromInput(d as Duration.Input)
  if (o._tag === "None") return Number.NaN
  const millis = Duration.toMillis(o.value)
  return millis
}

/** Checks and decodes the restart options. @internal */
export const decodeRestartPolicy = (module: string, options: RestartOptions): RestartPolicy | InvalidOptions => {
  const common = checkSupervisorOptions(module, options)
  if (common) return common
  const backoff = options.restartBackoff
  if (backoff !== undefined) {
    const invalid = (backoff as { readonly [InvalidBackoff]?: InvalidOptions })[InvalidBackoff]
    if (invalid !== undefined) return invalid
    if (!Schedule.isSchedule(backoff)) {
      return new InvalidOptions({ module, field: "restartBackoff", value: backoff, expected: "a Schedule" })
    }
  }
  const maxSeconds = options.maxSeconds ?? 5
  let resetAfterMillis = maxSeconds * 1000
  if (options.restartBackoffResetAfter !== undefined) {
    const millis = inputMillis(options.restartBackoffResetAfter)
    if (!(millis >= 0)) {
      return new InvalidOptions({
        module,
        field: "restartBackoffResetAfter",
        value: options.restartBackoffResetAfter,
        expected: "a duration >= 0"
      })
    }
    resetAfterMillis = millis
  }
  return { maxRestarts: options.maxRestarts ?? 3, maxSeconds, backoff, resetAfterMillis }
}

/** What a supervisor keeps per child for its backoff (allocated on its first restart). @internal */
export interface BackoffState {
  attempt: number
  /** monotonic ms when the current incarnation started */
  upSince: number
  step: ((now: number, input: number) => Pull.Pull<[unknown, Duration.Duration], unknown, unknown>) | undefined
}

/** The intensity window and the backoff interpreter of one supervisor. @internal */
export class Restarts {
  readonly window: RestartWindow = makeWindow()
  constructor(
    readonly policy: RestartPolicy,
    /** monotonic milliseconds */
    readonly now: () => number
  ) {}

  /** Records a restart now; false when it exceeds the intensity (give up). */
  allow(): boolean {
    return addRestart(this.window, this.now(), this.policy.maxRestarts, this.policy.maxSeconds * 1000)
  }

  /**
   * The delay before the next restart of a child with this backoff state:
   * `undefined` when the schedule ended (give up). A child that stayed up
   * `resetAfterMillis` starts from the schedule's first step again.
   */
  nextDelay(state: BackoffState): Effect.Effect<number | undefined> {
    const backoff = this.policy.backoff!
    const now = this.now()
    if (state.step !== undefined && now - state.upSince >= this.policy.resetAfterMillis) {
      state.step = undefined
      state.attempt = 0
    }
    state.attempt++
    return Effect.gen(function* () {
      if (state.step === undefined) state.step = yield* Schedule.toStep(backoff)
      const result = yield* Effect.exit(state.step(now, state.attempt))
      if (result._tag === "Failure") {
        if (Pull.isDoneCause(result.cause)) return undefined
        return yield* Effect.failCause(result.cause) as Effect.Effect<never>
      }
      return Duration.toMillis(result.value[1])
    })
  }
}

/** @internal */
export const newBackoffState = (now: number): BackoffState => ({ attempt: 0, upSince: now, step: undefined })
