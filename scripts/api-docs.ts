/**
 * `npm run docs:api`: the API reference in docs/api/, generated from the JSDoc.
 *
 * Effect's packages use `@effect/docgen`; it (like TypeDoc) drives TypeScript 5's compiler API
 * (`import ts from "typescript"`, `ts.createProgram`), which TypeScript 7, the compiler this
 * repository builds with, no longer has (its `typescript` package exports only the version and an
 * unstable native API). So this reads what `tsc` itself emits: the declaration files of the public
 * modules (`tsc --emitDeclarationOnly` into a temp dir), whose top-level statements are exactly the
 * exported signatures, each under its doc comment. One page per public module, as docgen lays it
 * out: the module's header, then its exports grouped by `@category`, each with its description,
 * examples, signature, `@since` and a link to its source. The examples themselves are checked by
 * `npm run docs:check`.
 *
 * The output is committed, so the reference is readable on GitHub and from the README;
 * `npm run docs:api -- --check` (in CI) fails when it differs from what the sources generate.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "..")
const outDir = path.join(root, "docs", "api")
const check = process.argv.includes("--check")

interface PackageJson {
  readonly name: string
  readonly exports: Record<string, string | { readonly types: string; readonly default: string }>
}
const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as PackageJson

// ---------------------------------------------------------------------------------------------
// the declarations

const dts = fs.mkdtempSync(path.join(os.tmpdir(), "effect-otp-api-"))
const emitted = spawnSync(
  path.join(root, "node_modules", ".bin", "tsc"),
  [
    "-p",
    path.join(root, "tsconfig.build.json"),
    "--emitDeclarationOnly",
    "--declarationMap",
    "false",
    "--sourceMap",
    "false",
    "--outDir",
    dts
  ],
  { cwd: root, encoding: "utf8" }
)

/** A module of src/, by its path without extension ("Supervisor/ChildSpec"). */
const readDts = (module: string): string | undefined => {
  const file = path.join(dts, `${module}.d.ts`)
  return fs.existsSync(file) ? fs.readFileSync(file, "utf8") : undefined
}

interface Doc {
  readonly text: string
  readonly tags: ReadonlyArray<readonly [string, string]>
}

const parseDoc = (comment: string): Doc => {
  const lines = comment
    .replace(/^\/\*\*\s?/, "")
    .replace(/\s*\*\/$/, "")
    .split("\n")
    .map((l) => l.replace(/^\s*\* ?/, ""))
  const text: Array<string> = []
  const tags: Array<[string, string]> = []
  let fence = false
  for (const line of lines) {
    if (/^\s*```/.test(line)) fence = !fence
    const tag = fence ? null : /^@(\w+)\s*(.*)$/.exec(line)
    if (tag) tags.push([tag[1]!, tag[2]!])
    else if (tags.length > 0 && line.trim() !== "" && !fence) tags[tags.length - 1]![1] += ` ${line.trim()}`
    else if (tags.length === 0) text.push(line)
  }
  return { text: text.join("\n").trim(), tags }
}
const tag = (doc: Doc, name: string) => doc.tags.find(([t]) => t === name)?.[1]

interface Statement {
  readonly doc: string | undefined
  readonly code: string
}

/** The top-level statements of a declaration file, each with the doc comment just above it. */
const statements = (source: string): Array<Statement> => {
  const lines = source.split("\n")
  const out: Array<Statement> = []
  let doc: string | undefined
  let i = 0
  while (i < lines.length) {
    const line = lines[i]!
    if (line.startsWith("/**")) {
      let j = i
      while (!lines[j]!.includes("*/")) j++
      doc = lines.slice(i, j + 1).join("\n")
      i = j + 1
      continue
    }
    if (line.trim() === "") {
      i++
      continue
    }
    let j = i + 1
    // a statement goes on while lines are indented or close a bracket, and, inside `export { ... }`,
    // up to its closing brace (its members carry their own doc comments)
    if (/^export \{\s*$/.test(line)) {
      // it ends at the first line outside a doc comment that closes it (`await_ as await };`)
      while (j < lines.length && (/^\s*(\/\*\*|\*)/.test(lines[j]!) || !/\}\s*;?\s*$/.test(lines[j]!))) j++
      j++
    } else {
      while (j < lines.length && (/^\s/.test(lines[j]!) || /^[})\]>|&]/.test(lines[j]!))) j++
    }
    out.push({ doc, code: lines.slice(i, j).join("\n") })
    doc = undefined
    i = j
  }
  return out
}

interface Export {
  readonly name: string
  readonly doc: Doc
  readonly signature: string
}

const declaredName = (code: string) =>
  /^(?:export )?(?:declare )?(?:const|function|class|abstract class|interface|type|namespace|enum) (\w+)/.exec(
    code
  )?.[1]

/** The exports of a module: declarations with `export`, and the names of `export { ... }` blocks. */
const exportsOf = (module: string): { readonly header: Doc | undefined; readonly exports: Array<Export> } => {
  const source = readDts(module)
  if (source === undefined) throw new Error(`no declarations for src/${module}.ts (did tsc fail?)\n${emitted.stdout}`)
  const all = statements(source)
  // the file's header, read from the source (tsc leaves it out of some declaration files): a first doc
  // comment that an import, another doc comment or a re-export follows
  const header = /^\/\*\*[\s\S]*?\*\/\n(?:import |\/\*\*|export \* as )/
    .exec(srcOf(module))?.[0]
    .replace(/\n[^\n]*$/, "")
  const skipFirst = header !== undefined && /^\/\*\*[\s\S]*?\*\/\n(?:import |\/\*\*|export \* as )/.test(source)
  const local = new Map<string, string>()
  for (const s of all) {
    const name = declaredName(s.code)
    if (name !== undefined && !local.has(name)) local.set(name, s.code)
  }
  const imported = new Map<string, { readonly module: string; readonly code: string }>()
  for (const s of all) {
    const m = /^import (?:type )?\{([^}]*)\} from "(\.[^"]+)"/.exec(s.code)
    if (!m) continue
    const from = path.posix.join(path.posix.dirname(module), m[2]!).replace(/\.(ts|js)$/, "")
    for (const n of m[1]!.split(",").map((x) => x.trim().replace(/^type /, ""))) {
      const code = statements(readDts(from) ?? "").find((c) => declaredName(c.code) === n)?.code
      if (code !== undefined) imported.set(n, { module: from, code })
    }
  }
  const exports: Array<Export> = []
  all.forEach((s, k) => {
    if (skipFirst && k === 0 && all[0]!.doc !== undefined && !all[0]!.code.startsWith("export ")) return
    if (/^export \{\s*$/.test(s.code.split("\n")[0]!)) {
      for (const m of s.code.matchAll(/(\/\*\*(?:(?!\*\/)[\s\S])*\*\/)\s*\n(\w+)(?: as (\w+))?\s*[,}]/g)) {
        const own = m[2]!
        const name = m[3] ?? own
        const from = imported.get(own)
        const code = local.get(own) ?? (from && withSourceHeritage(from.module, own, from.code))
        exports.push({
          name,
          doc: parseDoc(m[1]!),
          signature: code === undefined ? `export { ${own}${m[3] ? ` as ${name}` : ""} }` : rename(code, own, name)
        })
      }
      return
    }
    if (!s.code.startsWith("export ")) return
    const star = /^export \* as (\w+) from/.exec(s.code)
    const name = star?.[1] ?? declaredName(s.code)
    if (name === undefined || s.doc === undefined) return
    exports.push({ name, doc: parseDoc(s.doc), signature: withSourceHeritage(module, name, s.code) })
  })
  return { header: header === undefined ? undefined : parseDoc(header), exports }
}

const srcOf = (module: string): string => {
  const file = path.join(root, "src", `${module}.ts`)
  return fs.existsSync(file) ? fs.readFileSync(file, "utf8") : ""
}

/**
 * A class declared `extends Data.TaggedError("X")<{ ... }>` is emitted as `extends X_base`, a name that
 * means nothing to a reader: show the source's header (up to the body's brace) instead.
 */
const withSourceHeritage = (module: string, name: string, code: string): string => {
  if (!new RegExp(`^export declare (?:abstract )?class ${name}\\b[^\\n]*\\w+_base\\b`).test(code)) return code
  const source = srcOf(module)
  const start = source.search(new RegExp(`^export (?:abstract )?class ${name}\\b`, "m"))
  if (start < 0) return code
  const end = bodyBrace(source, start)
  const body = bodyBrace(code, 0)
  return end < 0 || body < 0
    ? code
    : `${source.slice(start, end).replace(/^export /, "export declare ")}${code.slice(body)}`
}

/** Where a class's body opens: the first `{` outside every bracket, from `from`. */
const bodyBrace = (text: string, from: number): number => {
  let depth = 0
  for (let i = from; i < text.length; i++) {
    const c = text[i]!
    if (c === "{" && depth === 0) return i
    if (c === "(" || c === "[" || c === "<" || c === "{") depth++
    else if (c === ")" || c === "]" || c === "}" || (c === ">" && text[i - 1] !== "=")) depth--
  }
  return -1
}

/** A declaration shown under its exported name, `export`ed (`declare const await_` → `export declare const await`). */
const rename = (code: string, own: string, name: string) =>
  code.replace(
    new RegExp(`^(export )?(declare )?(const|function|class|abstract class|interface|type) ${own}\\b`),
    (_m, _e, d, k) => `export ${d ?? ""}${k} ${name}`
  )

// ---------------------------------------------------------------------------------------------
// the pages

interface Page {
  /** The namespace name users see (`DynamicSupervisor`). */
  readonly title: string
  /** src path without extension. */
  readonly module: string
  /** How to import it. */
  readonly imports: ReadonlyArray<string>
}

const moduleOf = (target: string) => target.replace(/^\.\/dist\//, "").replace(/\.js$/, "")
const pages: Array<Page> = []
const indexes: Array<{ readonly specifier: string; readonly module: string; readonly members: Array<string> }> = []
const subpathOf = new Map<string, string>()
for (const [subpath, target] of Object.entries(pkg.exports)) {
  if (typeof target !== "string" && subpath !== ".")
    subpathOf.set(moduleOf(target.default), `${pkg.name}${subpath.slice(1)}`)
}
for (const [subpath, target] of Object.entries(pkg.exports)) {
  if (typeof target === "string") continue
  const module = moduleOf(target.default)
  const specifier = `${pkg.name}${subpath.slice(1)}`
  const source = readDts(module) ?? ""
  const stars = [...source.matchAll(/^export \* as (\w+) from "(\.[^"]+)"/gm)]
  if (stars.length === 0) {
    if (!pages.some((p) => p.module === module)) {
      const title = subpath.slice(2)
      pages.push({ title, module, imports: [`import * as ${title} from "${specifier}"`] })
    }
    continue
  }
  const members: Array<string> = []
  for (const [, name, rel] of stars) {
    const m = path.posix.join(path.posix.dirname(module), rel!).replace(/\.(ts|js)$/, "")
    members.push(name!)
    const own = subpathOf.get(m)
    const imports = [`import { ${name} } from "${specifier}"`, ...(own ? [`import * as ${name} from "${own}"`] : [])]
    const existing = pages.findIndex((p) => p.module === m)
    if (existing >= 0) pages.splice(existing, 1)
    pages.push({ title: name!, module: m, imports })
  }
  indexes.push({ specifier, module, members })
}

const slug = (s: string) =>
  s
    .toLowerCase()
    .replace(/[^\w\- ]/g, "")
    .replace(/ /g, "-")

const firstSentence = (text: string) => {
  const para = text
    .split(/\n\s*\n/)[0]!
    .replace(/\s+/g, " ")
    .trim()
  const m = /^(.*?\.)(\s|$)/.exec(para)
  return m ? m[1]! : para
}

/** `{@link name}` → a link to the export on the same page, or the name in code. */
const links = (text: string, anchors: ReadonlyMap<string, string>) =>
  text.replace(/\{@link\s+([\w.]+)\s*\}/g, (_m, name: string) => {
    const a = anchors.get(`### ${name}`)
    return a !== undefined ? `[\`${name}\`](#${a})` : `\`${name}\``
  })

const renderPage = (page: Page): string => {
  const { header, exports } = exportsOf(page.module)
  const visible = exports.filter((e) => tag(e.doc, "internal") === undefined)
  const byCategory = new Map<string, Array<Export>>()
  for (const e of visible) {
    const category = tag(e.doc, "category") ?? "utils"
    byCategory.set(category, [...(byCategory.get(category) ?? []), e])
  }
  const categories = [...byCategory.keys()].sort()
  for (const c of categories) byCategory.get(c)!.sort((a, b) => a.name.localeCompare(b.name))
  // GitHub's anchors, in heading order: a repeated slug gets -1, -2, ... (the model `ChildSpec` under the
  // page title `ChildSpec` is #childspec-1)
  const anchor = new Map<string, string>()
  const used = new Map<string, number>()
  const heading = (h: string, text: string) => {
    const base = slug(text)
    const n = used.get(base) ?? 0
    used.set(base, n + 1)
    if (!anchor.has(h)) anchor.set(h, n === 0 ? base : `${base}-${n}`)
  }
  heading(`# ${page.title}`, page.title)
  heading("## Contents", "Contents")
  for (const c of categories) {
    heading(`## ${c}`, c)
    for (const e of byCategory.get(c)!) heading(`### ${e.name}`, e.name)
  }
  const src = `../../src/${page.module}.ts`
  const out: Array<string> = [
    `# ${page.title}`,
    "",
    `<!-- generated by \`npm run docs:api\` from src/${page.module}.ts: do not edit -->`,
    "",
    "```ts",
    ...page.imports,
    "```",
    ""
  ]
  if (header !== undefined) {
    out.push(links(header.text, anchor), "")
    const since = tag(header, "since")
    if (since) out.push(`Added in v${since}`, "")
  }
  out.push(`Source: [src/${page.module}.ts](${src})`, "", "## Contents", "")
  for (const c of categories) {
    out.push(`- [${c}](#${anchor.get(`## ${c}`)})`)
    for (const e of byCategory.get(c)!) out.push(`  - [${e.name}](#${anchor.get(`### ${e.name}`)})`)
  }
  for (const c of categories) {
    out.push("", `## ${c}`)
    for (const e of byCategory.get(c)!) {
      out.push("", `### ${e.name}`, "")
      if (e.doc.text !== "") out.push(links(e.doc.text, anchor).replace(/^(#+) /gm, "$1### "), "")
      out.push("**Signature**", "", "```ts", e.signature.replace(/;$/, ""), "```", "")
      const see = e.doc.tags.filter(([t]) => t === "see").map(([, v]) => v)
      if (see.length > 0) out.push(`See also: ${links(see.join("; "), anchor)}`, "")
      // the file, not a line: a line number would make the committed reference stale at every edit
      const since = tag(e.doc, "since")
      out.push(
        [since ? `Added in v${since}` : undefined, `[source](${src})`].filter((x) => x !== undefined).join(" · ")
      )
    }
  }
  return out.join("\n").replace(/\n{3,}/g, "\n\n") + "\n"
}

const renderIndex = (): string => {
  const out: Array<string> = [
    "# effect-otp API reference",
    "",
    "<!-- generated by `npm run docs:api` from the JSDoc of src/: do not edit -->",
    "",
    "Every public module, its exports grouped by category, each with its signature and examples. The examples are",
    "typechecked and run by `npm run docs:check`. Internal modules are not importable and not listed.",
    ""
  ]
  for (const index of indexes) {
    out.push(`## \`${index.specifier}\``, "", "| module | |", "| --- | --- |")
    for (const name of index.members) {
      const page = pages.find((p) => p.title === name)
      const header = page ? exportsOf(page.module).header : undefined
      out.push(`| [${name}](${name}.md) | ${header ? firstSentence(header.text).replace(/\|/g, "\\|") : ""} |`)
    }
    out.push("")
  }
  const loose = pages.filter((p) => !indexes.some((i) => i.members.includes(p.title)))
  if (loose.length > 0) {
    out.push("## Other entry points", "", "| module | |", "| --- | --- |")
    for (const p of loose) {
      const header = exportsOf(p.module).header
      out.push(`| [${p.title}](${p.title}.md) | ${header ? firstSentence(header.text) : ""} |`)
    }
    out.push("")
  }
  return out.join("\n")
}

// ---------------------------------------------------------------------------------------------
// main

const files = new Map<string, string>([["README.md", renderIndex()]])
for (const page of pages) files.set(`${page.title}.md`, renderPage(page))
fs.rmSync(dts, { recursive: true, force: true })

if (check) {
  const problems: Array<string> = []
  const existing = fs.existsSync(outDir) ? fs.readdirSync(outDir).filter((f) => f.endsWith(".md")) : []
  for (const [name, content] of files) {
    const file = path.join(outDir, name)
    if (!fs.existsSync(file)) problems.push(`docs/api/${name} is missing`)
    else if (fs.readFileSync(file, "utf8") !== content) problems.push(`docs/api/${name} is out of date`)
  }
  for (const name of existing) if (!files.has(name)) problems.push(`docs/api/${name} documents no public module`)
  if (problems.length > 0) {
    console.error(`${problems.join("\n")}\n\ndocs:api: run \`npm run docs:api\` and commit docs/api/`)
    process.exit(1)
  }
  console.log(`docs:api: docs/api/ is up to date (${files.size} pages)`)
} else {
  fs.rmSync(outDir, { recursive: true, force: true })
  fs.mkdirSync(outDir, { recursive: true })
  for (const [name, content] of files) fs.writeFileSync(path.join(outDir, name), content)
  console.log(`docs:api: wrote ${files.size} pages to docs/api/`)
}
