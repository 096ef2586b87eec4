/**
 * `npm run pack:check`: the package a user installs is the package we think it is.
 *
 * 1. Clones the repository's committed HEAD into a temp dir (a clean tree: no dist/, nothing
 *    uncommitted) and runs `npm pack` there, so `prepack` must build dist/ by itself. The clone
 *    borrows this checkout's node_modules (the build tools only; nothing of it is packed).
 * 2. Checks the tarball's file list: dist/ with .js and .d.ts for every `exports` entry,
 *    LICENSE, README.md; no tests, benches or examples.
 * 3. Runs `publint` and `@arethetypeswrong/cli` (profile esm-only: the package is ESM only) on
 *    the tarball.
 * 4. Installs the tarball into an empty project with `npm install` (effect, the peer dependency,
 *    comes from the registry or npm's cache), then, in that project:
 *    - imports every public entry point (package.json `exports`) and runs a small program
 *      against the installed build, under every Node found here (this checkout's and the one on
 *      PATH), each of which must satisfy `engines.node`;
 *    - fails to import internal paths (`effect-otp/Supervisor/internal/child`, `effect-otp/dist/...`);
 *    - typechecks a consumer module (`moduleResolution: nodenext`) that imports every entry point,
 *      and checks that an internal path does not resolve for the type checker either.
 *
 * Any failure exits non-zero. Options: `--keep` leaves the temp dir for inspection.
 */
import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "..")
const keep = process.argv.includes("--keep")
const problems: Array<string> = []
const step = (title: string) => console.log(`\npack:check: ${title}`)
const fail = (message: string) => {
  problems.push(message)
  console.error(`  FAIL ${message}`)
}
const ok = (message: string) => console.log(`  ok   ${message}`)

const run = (command: string, args: ReadonlyArray<string>, cwd: string, env: NodeJS.ProcessEnv = process.env) => {
  const r = spawnSync(command, args, { cwd, encoding: "utf8", env, maxBuffer: 64 * 1024 * 1024 })
  return { status: r.status ?? 1, stdout: r.stdout ?? "", stderr: r.stderr ?? "", error: r.error }
}

interface PackageJson {
  readonly name: string
  readonly version: string
  readonly engines?: { readonly node?: string }
  readonly peerDependencies?: Record<string, string>
  readonly devDependencies?: Record<string, string>
  readonly exports: Record<string, string | { readonly types: string; readonly default: string }>
}
const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as PackageJson
const entries = Object.entries(pkg.exports).flatMap(([subpath, target]) =>
  typeof target === "string" ? [] : [{ specifier: `${pkg.name}${subpath.slice(1)}`, subpath, target }]
)
const internals = [
  `${pkg.name}/Supervisor/internal/child`,
  `${pkg.name}/internal/show`,
  `${pkg.name}/dist/index.js`,
  `${pkg.name}/src/index.ts`
]

/** `>=X.Y.Z` (the only form `engines.node` uses here) against a version. */
const satisfies = (range: string, version: string): boolean => {
  const m = /^>=\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(range.trim())
  if (!m) throw new Error(`pack:check understands engines.node of the form >=X.Y.Z, got ${range}`)
  const want = [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)]
  const have = version.replace(/^v/, "").split(".").map(Number)
  for (let i = 0; i < 3; i++) if ((have[i] ?? 0) !== want[i]) return (have[i] ?? 0) > want[i]!
  return true
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), "effect-otp-pack-"))
try {
  // 1. a clean clone, packed --------------------------------------------------------------------
  step(
    `clone HEAD (${execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8" }).trim()}) and npm pack`
  )
  const clone = path.join(work, "clone")
  const cloned = run("git", ["clone", "--quiet", "--no-hardlinks", root, clone], work)
  if (cloned.status !== 0) throw new Error(`git clone failed:\n${cloned.stderr}`)
  if (fs.existsSync(path.join(clone, "dist"))) fail("a clean clone already has dist/ (is dist/ committed?)")
  fs.symlinkSync(path.join(root, "node_modules"), path.join(clone, "node_modules"), "dir")
  const packed = run("npm", ["pack", "--json", "--pack-destination", work], clone)
  if (packed.status !== 0) throw new Error(`npm pack failed:\n${packed.stdout}\n${packed.stderr}`)
  const info = (
    JSON.parse(packed.stdout.slice(packed.stdout.indexOf("["))) as Array<{
      filename: string
      size: number
      unpackedSize: number
      files: Array<{ path: string }>
    }>
  )[0]!
  const tarball = path.join(work, info.filename)
  ok(`${info.filename}: ${info.files.length} files, ${(info.size / 1024).toFixed(0)} kB packed`)

  // 2. what is in it ----------------------------------------------------------------------------
  step("the tarball's files")
  const files = new Set(info.files.map((f) => f.path))
  for (const required of ["package.json", "README.md", "LICENSE", "dist/index.js", "dist/index.d.ts"]) {
    if (files.has(required)) ok(required)
    else fail(`${required} is not in the tarball`)
  }
  for (const { subpath, target } of entries) {
    for (const file of [target.default, target.types]) {
      if (!files.has(file.replace(/^\.\//, ""))) fail(`exports["${subpath}"] points at ${file}, not in the tarball`)
    }
  }
  // every namespace the root re-exports has its own subpath too (effect-otp/DynamicSupervisor, ...)
  const rootIndex = fs.readFileSync(path.join(clone, "dist", "index.js"), "utf8")
  for (const m of rootIndex.matchAll(/export \* as (\w+) from "\.\/([^"]+)"/g)) {
    const target = `./dist/${m[2]!.replace(/\.ts$/, ".js")}`
    if (!entries.some((e) => e.target.default === target))
      fail(`${pkg.name} re-exports ${m[1]} (${target}) but exports has no subpath for it`)
  }
  const stray = [...files].filter((f) => /^(test|bench|examples|scripts|docs|\.ci)\//.test(f) || /\.test\.ts$/.test(f))
  if (stray.length > 0) fail(`files that are not the library: ${stray.slice(0, 10).join(", ")}`)
  else ok(`every exports target is present; no tests, benches, examples or scripts`)

  // 3. the ecosystem's own checks ---------------------------------------------------------------
  step("publint")
  const publint = run(path.join(root, "node_modules/.bin/publint"), ["run", tarball, "--strict"], work)
  console.log(
    (publint.stdout + publint.stderr)
      .trim()
      .split("\n")
      .map((l) => `  | ${l}`)
      .join("\n")
  )
  if (publint.status !== 0) fail("publint reported problems")
  step("@arethetypeswrong/cli (profile esm-only)")
  const attw = run(
    path.join(root, "node_modules/.bin/attw"),
    [tarball, "--profile", "esm-only", "--format", "table-flipped", "--no-emoji", "--no-color"],
    work
  )
  console.log(
    (attw.stdout + attw.stderr)
      .trim()
      .split("\n")
      .map((l) => `  | ${l}`)
      .join("\n")
  )
  if (attw.status !== 0) fail("attw reported problems")

  // 4. installed into an empty project ----------------------------------------------------------
  step("npm install the tarball into an empty project")
  const consumer = path.join(work, "consumer")
  fs.mkdirSync(consumer)
  fs.writeFileSync(
    path.join(consumer, "package.json"),
    JSON.stringify({ name: "consumer", private: true, type: "module" }, null, 2)
  )
  const effectVersion = pkg.devDependencies?.effect ?? "latest"
  const installed = run(
    "npm",
    [
      "install",
      "--no-audit",
      "--no-fund",
      "--prefer-offline",
      "--ignore-scripts",
      tarball,
      `effect@${effectVersion}`,
      `@types/node@${pkg.devDependencies?.["@types/node"] ?? "latest"}`
    ],
    consumer
  )
  if (installed.status !== 0)
    throw new Error(`npm install of the tarball failed:\n${installed.stdout}\n${installed.stderr}`)
  ok(`installed ${info.filename} with effect@${effectVersion} (peer range ${pkg.peerDependencies?.effect})`)

  // every public entry point imports; internal paths do not; a small program runs
  const smoke = `
const entries = ${JSON.stringify(entries.map((e) => e.specifier))}
const internals = ${JSON.stringify(internals)}
const failures = []
for (const specifier of entries) {
  try {
    const m = await import(specifier)
    if (Object.keys(m).length === 0) failures.push(specifier + " imports but exports nothing")
  } catch (e) { failures.push(specifier + " does not import: " + e.message) }
}
for (const specifier of internals) {
  try { await import(specifier); failures.push(specifier + " is importable (an internal path)") }
  catch (e) { if (e.code !== "ERR_PACKAGE_PATH_NOT_EXPORTED") failures.push(specifier + ": unexpected " + e.code + " " + e.message) }
}
const { Effect, Ref } = await import("effect")
const { ChildSpec, DynamicSupervisor, Supervisor } = await import(${JSON.stringify(pkg.name)})
const answer = await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
  const sup = yield* DynamicSupervisor.make()
  const child = yield* DynamicSupervisor.startChild(sup, ChildSpec.make({ start: Ref.make(41) }))
  yield* Ref.update(child.handle, (n) => n + 1)
  const tree = yield* Supervisor.make([ChildSpec.make({ id: "a", start: Effect.void })], { strategy: "oneForOne" })
  return (yield* Ref.get(child.handle)) + (yield* Supervisor.whichChildren(tree)).length - 1
})))
if (answer !== 42) failures.push("the program answered " + answer)
console.log(JSON.stringify({ node: process.version, failures }))
`
  fs.writeFileSync(path.join(consumer, "smoke.mjs"), smoke)
  const nodes = new Map<string, string>()
  for (const candidate of [
    process.execPath,
    ...(process.env.PATH ?? "").split(path.delimiter).map((d) => path.join(d, "node"))
  ]) {
    if (candidate.includes(`${path.sep}node_modules${path.sep}`) && candidate !== process.execPath) continue
    if (!fs.existsSync(candidate)) continue
    const version = run(candidate, ["--version"], consumer).stdout.trim()
    if (version !== "" && !nodes.has(version)) nodes.set(version, candidate)
  }
  const engines = pkg.engines?.node
  if (engines === undefined) fail("package.json has no engines.node")
  step(`import every entry point, fail internal ones, run a program (engines.node ${engines})`)
  for (const [version, node] of [...nodes].sort()) {
    if (engines !== undefined && !satisfies(engines, version)) {
      fail(`Node ${version} (${node}) is on this machine but outside engines.node ${engines}`)
      continue
    }
    const r = run(node, ["smoke.mjs"], consumer)
    const last = r.stdout.trim().split("\n").pop() ?? ""
    let result: { node: string; failures: Array<string> } | undefined
    try {
      result = JSON.parse(last)
    } catch {
      fail(`Node ${version}: the smoke test crashed:\n${r.stdout}${r.stderr}`)
      continue
    }
    if (result!.failures.length > 0) for (const f of result!.failures) fail(`Node ${version}: ${f}`)
    else
      ok(
        `Node ${version}: ${entries.length} entry points import, ${internals.length} internal paths refused, the program ran`
      )
  }

  const floor = engines === undefined ? undefined : /^>=\s*(\d+)/.exec(engines)?.[1]
  if (floor !== undefined && ![...nodes.keys()].some((v) => v.replace(/^v/, "").split(".")[0] === floor)) {
    console.log(
      `  note engines.node says ${engines}, but no Node ${floor} is on this machine: its floor is not tested here`
    )
  }

  // the type checker sees the same: every entry point resolves, internals do not
  step("typecheck a consumer (moduleResolution nodenext)")
  fs.writeFileSync(
    path.join(consumer, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        target: "ES2022",
        module: "NodeNext",
        moduleResolution: "NodeNext",
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        types: ["node"]
      },
      include: ["consumer.ts", "internal.ts"]
    })
  )
  fs.writeFileSync(
    path.join(consumer, "consumer.ts"),
    [
      `import { Effect } from "effect"`,
      ...entries.map((e, i) => `import * as M${i} from ${JSON.stringify(e.specifier)}`),
      `export const all = [${entries.map((_, i) => `M${i}`).join(", ")}]`,
      `import { ChildSpec, DynamicSupervisor } from ${JSON.stringify(pkg.name)}`,
      `export const program: Effect.Effect<number, unknown, never> = Effect.scoped(Effect.gen(function* () {`,
      `  const sup = yield* DynamicSupervisor.make()`,
      `  const child = yield* DynamicSupervisor.startChild(sup, ChildSpec.make({ start: Effect.succeed(42) }))`,
      `  return child.handle`,
      `}))`,
      ``
    ].join("\n")
  )
  fs.writeFileSync(
    path.join(consumer, "internal.ts"),
    internals
      .map(
        (s, i) =>
          `// @ts-expect-error an internal path\nimport * as I${i} from ${JSON.stringify(s)}\nexport const i${i} = I${i}\n`
      )
      .join("")
  )
  const tsc = run(path.join(root, "node_modules/.bin/tsc"), ["-p", "tsconfig.json", "--pretty", "false"], consumer)
  if (tsc.status !== 0) fail(`the consumer does not typecheck:\n${tsc.stdout}${tsc.stderr}`)
  else
    ok(
      `${entries.length} entry points typecheck with skipLibCheck off; ${internals.length} internal paths do not resolve`
    )
} catch (error) {
  fail(error instanceof Error ? error.message : String(error))
} finally {
  if (keep) console.log(`\n(kept ${work})`)
  else fs.rmSync(work, { recursive: true, force: true })
}

if (problems.length > 0) {
  console.error(`\npack:check: ${problems.length} problem(s)`)
  process.exit(1)
}
console.log(`\npack:check: the packed package installs, imports, typechecks and passes publint and attw`)
