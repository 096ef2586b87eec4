/**
 * Processes for the multi-process suite (and the example and bench): spawn
 * runner processes (Node with type stripping), read their JSON lines, send
 * signals by PID, stop them all by PID.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as Path from "node:path"

export interface Line {
  readonly e: string
  readonly t: number
  readonly [key: string]: unknown
}

export interface RunnerProcess {
  readonly port: number
  readonly pid: number
  readonly lines: Array<Line>
  readonly stderr: Array<string>
  readonly exited: Promise<number | null>
  readonly isAlive: () => boolean
  readonly signal: (signal: NodeJS.Signals) => void
}

const live = new Set<ChildProcess>()
process.on("exit", () => {
  for (const child of live) {
    try {
      if (child.pid !== undefined) process.kill(child.pid, "SIGKILL")
    } catch {
      // gone
    }
  }
})

/** The runner of the multi-process suite. */
export const runnerScript = Path.join(import.meta.dirname, "runner.ts")

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export const spawnRunner = async (options: {
  readonly script: string
  readonly port: number
  readonly pgUrl: string
  readonly preset?: string
  readonly env?: Record<string, string>
  readonly echo?: boolean
}): Promise<RunnerProcess> => {
  const child = spawn(process.execPath, ["--no-warnings", "--import", "tsx", Path.resolve(options.script)], {
    env: {
      ...process.env,
      PORT: String(options.port),
      PG_URL: options.pgUrl,
      PRESET: options.preset ?? "fast",
      ...options.env
    },
    stdio: ["ignore", "pipe", "pipe"]
  })
  live.add(child)
  const lines: Array<Line> = []
  const stderr: Array<string> = []
  let exited = false
  const exitedP = new Promise<number | null>((resolve) =>
    child.on("exit", (code) => {
      exited = true
      live.delete(child)
      resolve(code)
    })
  )
  let buffer = ""
  let ready: () => void = () => {}
  const readyP = new Promise<void>((resolve) => (ready = resolve))
  child.stdout!.on("data", (chunk: Buffer) => {
    buffer += chunk.toString("utf8")
    let nl = buffer.indexOf("\n")
    while (nl >= 0) {
      const text = buffer.slice(0, nl)
      buffer = buffer.slice(nl + 1)
      nl = buffer.indexOf("\n")
      if (options.echo) console.log(`[${options.port}] ${text}`)
      if (!text.startsWith("{")) {
        stderr.push(text)
        continue
      }
      try {
        const line = JSON.parse(text) as Line
        lines.push(line)
        if (line.e === "ready") ready()
      } catch {
        stderr.push(text)
      }
    }
  })
  child.stderr!.on("data", (chunk: Buffer) => {
    const text = chunk.toString("utf8")
    if (options.echo) process.stderr.write(`[${options.port}!] ${text}`)
    stderr.push(text)
    if (stderr.length > 400) stderr.splice(0, 200)
  })
  const timeout = sleep(90_000).then(() => "timeout" as const)
  const result = await Promise.race([
    readyP.then(() => "ready" as const),
    exitedP.then(() => "exited" as const),
    timeout
  ])
  if (result !== "ready") {
    if (child.pid !== undefined && !exited) process.kill(child.pid, "SIGKILL")
    throw new Error(`runner ${options.port} did not start (${result}):\n${stderr.slice(-30).join("")}`)
  }
  return {
    port: options.port,
    pid: child.pid!,
    lines,
    stderr,
    exited: exitedP,
    isAlive: () => !exited,
    signal: (signal) => {
      if (!exited) process.kill(child.pid!, signal)
    }
  }
}

/** Stops every runner by PID: SIGCONT (in case it is paused), then SIGKILL; waits for the exits. */
export const stopAll = async (runners: ReadonlyArray<RunnerProcess | undefined>): Promise<void> => {
  for (const runner of runners) {
    if (runner === undefined || !runner.isAlive()) continue
    try {
      process.kill(runner.pid, "SIGCONT")
      process.kill(runner.pid, "SIGKILL")
    } catch {
      // gone meanwhile
    }
  }
  await Promise.all(runners.map((r) => (r === undefined ? undefined : Promise.race([r.exited, sleep(10_000)]))))
}

/** Stops a runner gracefully (SIGTERM) and waits for it to exit (SIGKILL after `timeoutMs`). */
export const terminate = async (runner: RunnerProcess, timeoutMs = 30_000): Promise<void> => {
  runner.signal("SIGTERM")
  const result = await Promise.race([runner.exited.then(() => "exited"), sleep(timeoutMs).then(() => "timeout")])
  if (result === "timeout") {
    runner.signal("SIGKILL")
    await runner.exited
  }
}
