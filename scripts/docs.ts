/**
 * `npm run docs:check`: proves that the examples users copy are true.
 *
 * Every export of src/ (internal/ excepted) has a doc comment with `@since` and `@category`,
 * every `npm run ...` README.md mentions exists, every citation of the reference documents
 * (`C.6 #84`, `§2.5`, `T-DS #41`, `D7`, ...) and every README/docs link resolves
 * (scripts/citations.ts), and every ```ts fence in that JSDoc and in
 * README.md is
 *
 * 1. typechecked as written, each as its own module importing from "effect-otp" or one of
 *    its public subpaths (mapped to the source file behind each package.json `exports`
 *    entry; an internal path does not resolve), all in one `tsc` run;
 * 2. run (unless it `declare`s a placeholder value): top-level code runs, a `program`
 *    the example defines but does not run is run scoped, and `Effect.runPromise` runs
 *    under a `TestClock` that advances by itself (10 ms steps, at most 10 virtual
 *    minutes), so examples about time are exact and take no real time;
 * 3. checked: `expr // => value` (Effect's convention) compares `expr` with `value`
 *    (`Option`, `Exit`, `Cause` and `Duration` are in scope); a `// => value` alone on the
 *    last line states the result of `program` (which the example defines, not runs); and
 *    `// Output:` followed by comment lines compares what the example printed with
 *    `console.log`.
 *
 * Examples run one after the other in this process, Effect's log lines silenced; an example
 * that states its `// Output:` runs in a process of its own, so that what it prints (pids,
 * say) is what a user sees in a fresh program.
 */
import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import * as util from "node:util"
import { Cause, Duration, Effect, Equal, Exit, Option, References } from "effect"
import { TestClock } from "effect/testing"
import { checkCitations, checkLinks } from "./citations.ts"

const root = path.resolve(import.meta.dirname, "..")

/**
 * The package's public entry points, from package.json `exports`: "effect-otp" and each
 * "effect-otp/<subpath>", with the source file behind it (./dist/X.js -> src/X.ts).
 */
const entryPoints: ReadonlyMap<string, string> = new Map(
  Object.entries(
    (
      JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as {
        exports: Record<string, string | { readonly default: string }>
      }
    ).exports
  ).flatMap(([subpath, target]) =>
    typeof target === "string"
      ? []
      : [
          [
            `effect-otp${subpath.slice(1)}`,
            path.join(root, target.default.replace(/^\.\/dist\//, "src/").replace(/\.js$/, ".ts"))
          ] as const
        ]
  )
)

interface Example {
  /** Where the fence's first code line is, as `path:line` (1-based). */
  readonly source: string
  readonly file: string
  readonly firstLine: number
  readonly code: string
  /** The module name it is written to. */
  readonly name: string
}

const sourceFiles = (): Array<string> => {
  const out: Array<string> = []
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = path.join(dir, entry.name)
      if (entry.isDirectory()) {
        if (entry.name !== "internal") walk(rel)
      } else if (entry.name.endsWith(".ts")) out.push(rel)
    }
  }
  walk("src")
  return [...out.sort(), "README.md"]
}

/** The ```ts fences of a file: in a `.ts` file only those inside doc comments (the leading ` * ` removed). */
const extract = (file: string): Array<Example> => {
  const lines = fs.readFileSync(path.join(root, file), "utf8").split("\n")
  const isMarkdown = file.endsWith(".md")
  const examples: Array<Example> = []
  let body: Array<string> | undefined
  let firstLine = 0
  lines.forEach((raw, i) => {
    let line = raw
    if (!isMarkdown) {
      const m = /^\s*\*( |$)(.*)$/.exec(raw)
      if (m === null) {
        body = undefined
        return
      }
      line = m[2] ?? ""
    }
    if (body === undefined) {
      if (/^```ts\b/.test(line)) {
        body = []
        firstLine = i + 2
      }
    } else if (/^```\s*$/.test(line)) {
      const name = `${file.replace(/[/.]/g, "_")}_${firstLine}`
      examples.push({ source: `${file}:${firstLine}`, file, firstLine, code: body.join("\n"), name })
      body = undefined
    } else {
      body.push(line)
    }
  })
  return examples
}

const problems: Array<string> = []

const runnable = (code: string) => !/^\s*declare /m.test(code)
const runsItself = (code: string) =>
  code.split("\n").some((l) => !/^\s*\/\//.test(l) && /\.run(Promise|Sync|Fork|Main)\b|\brunMain\(/.test(l))
const definesProgram = (code: string) => /^const program\b/m.test(code)

/** A `// => value` alone on the last line of an example states the result of its `program`. */
const programResult = (example: Example): { readonly index: number; readonly value: string } | undefined => {
  const lines = example.code.split("\n")
  let last = lines.length - 1
  while (last >= 0 && lines[last]!.trim() === "") last--
  const m = last >= 0 ? /^\/\/ => (.*)$/.exec(lines[last]!) : null
  return m ? { index: last, value: m[1]!.trim() } : undefined
}

/** The conventions that make results checkable. */
const lintExample = (example: Example) => {
  const result = programResult(example)
  example.code.split("\n").forEach((line, i) => {
    const at = `${example.file}:${example.firstLine + i}`
    if (/^\s*\/\/ =>/.test(line) && i !== result?.index) {
      problems.push(
        `${at}: a result stands after its expression (\`actual // => value\`), or alone on the last line for the result of \`program\``
      )
    }
    if (/^\s*\/\/.*\brun(Promise|Sync|Fork)\b.*=>/.test(line)) {
      problems.push(`${at}: a commented-out run: state the result of \`program\` as \`// => value\` on the last line`)
    }
  })
  if (result !== undefined && (!definesProgram(example.code) || runsItself(example.code))) {
    problems.push(
      `${example.file}:${example.firstLine + result.index}: a result alone on the last line is the result of \`program\`, which the example must define and not run`
    )
  }
}

/** Every export of a public module has a doc comment with `@since` and `@category` (or is `@internal`). */
const lintExports = (file: string) => {
  if (file.endsWith(".md") || file === "src/index.ts") return
  const lines = fs.readFileSync(path.join(root, file), "utf8").split("\n")
  const docAbove = (i: number): string | undefined => {
    let j = i - 1
    if (j < 0 || !lines[j]!.trim().endsWith("*/")) return undefined
    while (j >= 0 && !lines[j]!.trim().startsWith("/**")) j--
    return lines.slice(Math.max(j, 0), i).join("\n")
  }
  let inBlock = false
  lines.forEach((line, i) => {
    const at = `${file}:${i + 1}`
    let name: string | undefined
    if (/^export \{$/.test(line)) inBlock = true
    else if (inBlock && /^\}/.test(line)) inBlock = false
    else if (inBlock) name = /^\s+(?:\w+ as )?(\w+),?$/.exec(line)?.[1]
    else
      name = /^export (?:declare )?(?:const|function|class|abstract class|interface|type|namespace) (\w+)/.exec(
        line
      )?.[1]
    if (name === undefined) return
    const doc = docAbove(i)
    if (doc === undefined) problems.push(`${at}: export ${name} has no doc comment`)
    else if (!doc.includes("@internal")) {
      if (!doc.includes("@since")) problems.push(`${at}: export ${name} has no @since`)
      if (!doc.includes("@category")) problems.push(`${at}: export ${name} has no @category`)
    }
  })
}

/** Every `npm run <script>` README.md mentions exists, and every `npm run bench -- <name>` picks a bench. */
const lintCommands = () => {
  const scripts = Object.keys(
    (JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as { scripts: Record<string, string> })
      .scripts
  )
  const benches = fs.readdirSync(path.join(root, "bench")).filter((f) => f.endsWith(".bench.ts"))
  fs.readFileSync(path.join(root, "README.md"), "utf8")
    .split("\n")
    .forEach((line, i) => {
      for (const m of line.matchAll(/npm run ([\w:-]+)(?: -- ([\w-]+))?/g)) {
        if (!scripts.includes(m[1]!))
          problems.push(`README.md:${i + 1}: \`npm run ${m[1]}\` is not a script in package.json`)
        if (m[1] === "bench" && m[2] !== undefined && !benches.some((b) => b.includes(m[2]!))) {
          problems.push(`README.md:${i + 1}: \`npm run bench -- ${m[2]}\` matches no bench/*.bench.ts`)
        }
      }
    })
}

// ---------------------------------------------------------------------------------------------
// running one example

/** Runs an effect under a TestClock that advances by itself, with Effect's logging off. */
const drive = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
  Effect.raceFirst(
    effect,
    TestClock.adjust("10 millis").pipe(
      Effect.repeat({ times: 60_000 }),
      Effect.andThen(Effect.die(new Error("did not finish within 10 minutes of virtual time")))
    )
  ).pipe(Effect.provide(TestClock.layer()), Effect.provideService(References.MinimumLogLevel, "None"))

const equal = (a: unknown, b: unknown): boolean => {
  if (Equal.equals(a, b)) return true
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => equal(x, b[i]))
  if (Exit.isExit(a) && Exit.isExit(b)) {
    if (a._tag !== b._tag) return false
    if (Exit.isSuccess(a) && Exit.isSuccess(b)) return equal(a.value, b.value)
    return equal(Cause.prettyErrors((a as Exit.Failure<unknown, unknown>).cause).map(String), [
      ...Cause.prettyErrors((b as Exit.Failure<unknown, unknown>).cause).map(String)
    ])
  }
  if (Option.isOption(a) && Option.isOption(b)) {
    return a._tag === b._tag && (Option.isNone(a) || equal(a.value, (b as Option.Some<unknown>).value))
  }
  return util.isDeepStrictEqual(a, b)
}

interface Run {
  readonly printed: Array<string>
  readonly failures: Array<string>
  /** The runs the example started without awaiting them: awaited before it counts as done. */
  readonly pending: Array<Promise<unknown>>
}
let current: Run | undefined

const docs = {
  runPromise: <A, E>(effect: Effect.Effect<A, E>): Promise<A> => {
    const promise = Effect.runPromise(drive(effect))
    current?.pending.push(promise)
    return promise
  },
  runScoped: <A, E>(effect: Effect.Effect<A, E, any>): Promise<A> =>
    Effect.runPromise(drive(Effect.scoped(effect) as Effect.Effect<A, E>)),
  check: (actual: unknown, expectedSource: string, at: string) => {
    let expected: unknown
    try {
      expected = new Function("Option", "Exit", "Cause", "Duration", `return (${expectedSource}\n)`)(
        Option,
        Exit,
        Cause,
        Duration
      )
    } catch (error) {
      current?.failures.push(`${at}: cannot read the stated result \`${expectedSource}\`: ${String(error)}`)
      return
    }
    if (!equal(actual, expected)) {
      current?.failures.push(
        `${at}: stated ${expectedSource}, got ${util.inspect(actual, { depth: 6, breakLength: Infinity })}`
      )
    }
  }
}
;(globalThis as any).__docs = docs

/** The example as it runs: results become checks, runs go through `drive`. */
const instrument = (example: Example): { code: string; output: Array<string> | undefined } => {
  const lines = example.code.split("\n")
  const result = programResult(example)
  let output: Array<string> | undefined
  const out: Array<string> = []
  lines.forEach((line, i) => {
    const at = `${example.file}:${example.firstLine + i}`
    if (i === result?.index) {
      out.push(`__docs.check(await __docs.runScoped(program), ${JSON.stringify(result.value)}, ${JSON.stringify(at)})`)
      return
    }
    if (/^\s*\/\/ Output:\s*$/.test(line)) {
      output = []
      out.push(line)
      return
    }
    if (output !== undefined && /^\s*\/\/ ?/.test(line)) {
      output.push(line.replace(/^\s*\/\/ ?/, ""))
      out.push(line)
      return
    }
    const inline = /^(\s*)(.*\S)\s*\/\/ => (.*)$/.exec(line)
    if (inline && !/^\s*\/\//.test(line)) {
      out.push(`${inline[1]}__docs.check((${inline[2]}), ${JSON.stringify(inline[3]!.trim())}, ${JSON.stringify(at)})`)
      return
    }
    out.push(line.replace(/\bEffect\.runPromise\(/g, "__docs.runPromise("))
  })
  let code = out.join("\n").replace(/from "(effect-otp(?:\/[^"]*)?)"/g, (whole, specifier: string) => {
    const file = entryPoints.get(specifier)
    return file === undefined ? whole : `from ${JSON.stringify(pathToFileURL(file).href)}`
  })
  if (result === undefined && !runsItself(example.code) && definesProgram(example.code))
    code += "\nawait __docs.runScoped(program)\n"
  return { code: `declare const __docs: any\n${code}\n`, output }
}

/** Runs an instrumented example (see {@link instrument}) in this process: its failures. */
const runOne = async (file: string, source: string, output: Array<string> | undefined): Promise<Array<string>> => {
  const run: Run = { printed: [], failures: [], pending: [] }
  current = run
  const original = { log: console.log, info: console.info, warn: console.warn, error: console.error }
  console.log = (...args: Array<unknown>) => void run.printed.push(util.format(...args))
  console.info = console.warn = console.error = () => {}
  try {
    await import(pathToFileURL(file).href)
    for (const settled of await Promise.allSettled(run.pending)) {
      if (settled.status === "rejected") throw settled.reason
    }
  } catch (error) {
    run.failures.push(`${source}: the example failed: ${error instanceof Error ? error.stack : String(error)}`)
  } finally {
    Object.assign(console, original)
    current = undefined
  }
  if (output !== undefined && !util.isDeepStrictEqual(run.printed.join("\n").split("\n"), output)) {
    run.failures.push(`${source}: stated output\n${output.join("\n")}\nprinted\n${run.printed.join("\n")}`)
  }
  return run.failures
}

/** The same in a fresh process (`tsx scripts/docs.ts --isolated file source output`). */
const runIsolated = (file: string, source: string, output: Array<string>): Array<string> => {
  const child = spawnSync(
    process.execPath,
    ["--import", "tsx", import.meta.filename, "--isolated", file, source, JSON.stringify(output)],
    { cwd: root, encoding: "utf8" }
  )
  const last = child.stdout.trim().split("\n").pop() ?? ""
  try {
    return JSON.parse(last) as Array<string>
  } catch {
    return [`${source}: the example's process failed (status ${child.status}):\n${child.stdout}${child.stderr}`]
  }
}

// ---------------------------------------------------------------------------------------------
// main: typecheck everything in one tsc run, then run each example

if (process.argv[2] === "--isolated") {
  const [file, source, output] = process.argv.slice(3) as [string, string, string]
  const failures = await runOne(file, source, JSON.parse(output) as Array<string>)
  process.stdout.write(`\n${JSON.stringify(failures)}\n`)
} else {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "effect-otp-docs-"))
  fs.symlinkSync(path.join(root, "node_modules"), path.join(work, "node_modules"), "dir")
  fs.writeFileSync(path.join(work, "package.json"), JSON.stringify({ type: "module" }))
  fs.mkdirSync(path.join(work, "typecheck"))
  fs.mkdirSync(path.join(work, "run"))

  const examples = sourceFiles().flatMap(extract)
  examples.forEach(lintExample)
  sourceFiles().forEach(lintExports)
  lintCommands()
  // every cited scenario, section and decision exists in docs/; README and docs links resolve
  problems.push(...checkCitations(), ...checkLinks())

  for (const example of examples) {
    fs.writeFileSync(path.join(work, "typecheck", `${example.name}.ts`), example.code + "\n")
  }
  fs.writeFileSync(
    path.join(work, "tsconfig.json"),
    JSON.stringify({
      extends: path.join(root, "tsconfig.json"),
      compilerOptions: {
        // an example may define a `program` and stop there
        noUnusedLocals: false,
        noUnusedParameters: false,
        paths: Object.fromEntries([...entryPoints].map(([specifier, file]) => [specifier, [file]]))
      },
      include: ["typecheck/*.ts"]
    })
  )

  const byName = new Map(examples.map((e) => [e.name, e]))
  const tsc = path.join(root, "node_modules", ".bin", "tsc")
  let tscOutput = ""
  try {
    execFileSync(tsc, ["-p", path.join(work, "tsconfig.json"), "--noEmit", "--pretty", "false"], {
      encoding: "utf8",
      stdio: "pipe"
    })
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string }
    tscOutput = `${e.stdout ?? ""}${e.stderr ?? ""}`
  }
  for (const line of tscOutput.split("\n").filter((l) => l.trim() !== "")) {
    // typecheck/<name>.ts(line,col): error TS…  → src/…:line:col: error TS…
    const m = /typecheck\/([^/(]+)\.ts\((\d+),(\d+)\): (.*)$/.exec(line)
    const example = m ? byName.get(m[1]!) : undefined
    problems.push(
      m && example ? `${example.file}:${example.firstLine + Number(m[2]) - 1}:${m[3]}: ${m[4]}` : `tsc: ${line}`
    )
  }

  let ran = 0
  // an example whose run never settles (nothing left to wait for, a promise never resolved) makes Node
  // exit with 13 while awaiting it: say which one
  let running: string | undefined
  process.on("exit", (code) => {
    if (code === 13 && running !== undefined) fs.writeSync(2, `\n${running}: the example never settled (exit 13)\n`)
  })
  for (const example of examples) {
    if (!runnable(example.code)) continue
    running = example.source
    if (process.env.DOCS_TRACE) console.error(`running ${example.source}`)
    const { code, output } = instrument(example)
    const file = path.join(work, "run", `${example.name}.ts`)
    fs.writeFileSync(file, code)
    problems.push(
      ...(output === undefined ? await runOne(file, example.source, output) : runIsolated(file, example.source, output))
    )
    ran++
  }
  running = undefined

  fs.rmSync(work, { recursive: true, force: true })

  const files = new Set(examples.map((e) => e.file)).size
  if (problems.length > 0) {
    console.error(problems.join("\n"))
    console.error(`\ndocs:check: ${problems.length} problem(s) in ${examples.length} examples from ${files} files`)
    process.exit(1)
  }
  console.log(
    `docs:check: ${examples.length} examples from ${files} files typecheck; ${ran} ran and showed what they state`
  )
}
