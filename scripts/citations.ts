/**
 * Every citation of the reference documents resolves for someone with only the repository.
 *
 * Tests, JSDoc, examples, benches and the docs cite scenarios and sections by short ids (see
 * docs/README.md): `C.6 #84` / `C.6 #71–#80` (docs/reliability-scenarios.md part C), `B.6` (part B),
 * `D1`…`D8` (docs/decisions.md), `§2.5` / `otp-semantics §4` (docs/otp-semantics.md), `T-DS #41`,
 * `T-SUP #n`, `T-REG [U|D] #n`, `T-TSUP #n`, `T-TASK #n` (the test inventories of otp-semantics §9),
 * `house-style §4.5` (docs/house-style.md). This finds each one and checks that its target exists.
 * It also checks the links of README.md and docs/: a relative link points at a file of the
 * repository, README.md links files absolutely (they must work on the registry's page, where relative
 * links do not), and an absolute link into this repository's GitHub tree names a file that exists.
 *
 * `npm run docs:check` runs it; `tsx scripts/citations.ts` runs it alone.
 */
import * as fs from "node:fs"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "..")
const read = (rel: string) => fs.readFileSync(path.join(root, rel), "utf8")

/** The GitHub tree README links point into (package.json `repository`), e.g. https://github.com/o/r. */
const repositoryUrl = (): string | undefined => {
  const pkg = JSON.parse(read("package.json")) as { repository?: string | { url?: string } }
  const url = typeof pkg.repository === "string" ? pkg.repository : pkg.repository?.url
  const m = url ? /github\.com[/:]([^/]+\/[^/.]+)/.exec(url) : null
  return m ? `https://github.com/${m[1]}` : undefined
}

// ---------------------------------------------------------------------------------------------
// the targets

interface Targets {
  /** C.n → the scenario numbers listed in it. */
  readonly scenarios: Map<string, Set<number>>
  /** Part B technique numbers. */
  readonly techniques: Set<number>
  /** D numbers answered in decisions.md. */
  readonly decisions: Set<number>
  /** otp-semantics section numbers ("2", "2.5", "9.1"). */
  readonly otpSections: Set<string>
  /** T-DS, T-SUP, T-REG, T-REG U, T-REG D, T-TSUP, T-TASK → row numbers. */
  readonly inventories: Map<string, Set<number>>
  /** house-style section numbers. */
  readonly styleSections: Set<string>
}

const loadTargets = (): Targets => {
  const scenarios = new Map<string, Set<number>>()
  const techniques = new Set<number>()
  let part = ""
  let section = ""
  for (const line of read("docs/reliability-scenarios.md").split("\n")) {
    const p = /^## ([A-Z])\. /.exec(line)
    if (p) part = p[1]!
    const s = /^### (C\.\d+) /.exec(line)
    if (s) {
      section = s[1]!
      scenarios.set(section, new Set())
    }
    const item = /^(\d+)\. /.exec(line)
    if (item) {
      if (part === "B") techniques.add(Number(item[1]))
      if (part === "C" && section !== "") scenarios.get(section)!.add(Number(item[1]))
    }
  }

  const decisions = new Set<number>()
  for (const m of read("docs/decisions.md").matchAll(/^## D(\d+)\. /gm)) decisions.add(Number(m[1]))

  const otpSections = new Set<string>()
  const inventories = new Map<string, Set<number>>()
  const inventory = (name: string) => {
    const rows = inventories.get(name) ?? new Set<number>()
    inventories.set(name, rows)
    return rows
  }
  // the rows of the current §9.x table: under its own name and, for T-REG's U and D files, under T-REG too
  let rows: Array<Set<number>> = []
  let top = ""
  for (const line of read("docs/otp-semantics.md").split("\n")) {
    // a numbered item of a top-level section is cited as one of its subsections (§11.1: item 1 of §11)
    const item = /^(\d+)\. /.exec(line)
    if (item && top !== "") otpSections.add(`${top}.${item[1]}`)
    const h = /^#{2,4} (\d+(?:\.\d+)*)\.? /.exec(line)
    if (h) {
      otpSections.add(h[1]!)
      top = line.startsWith("## ") ? h[1]! : ""
      rows = []
      const t = /^### 9\.\d+ (T-[A-Z]+) (\S+)/.exec(line)
      if (t) {
        // §9.4 is T-REG's unique_test.exs (cited "T-REG U #n"), §9.5 its duplicate_test.exs ("T-REG D #n")
        const qualifier = t[1] !== "T-REG" ? "" : /unique/.test(t[2]!) ? "U" : /duplicate/.test(t[2]!) ? "D" : ""
        rows = qualifier === "" ? [inventory(t[1]!)] : [inventory(t[1]!), inventory(`${t[1]} ${qualifier}`)]
      }
    }
    const row = /^\| (\d+) \|/.exec(line)
    if (row) for (const r of rows) r.add(Number(row[1]))
  }

  const styleSections = new Set<string>()
  for (const m of read("docs/house-style.md").matchAll(/^#{2,4} (\d+(?:\.\d+)*)\.? /gm)) styleSections.add(m[1]!)

  return { scenarios, techniques, decisions, otpSections, inventories, styleSections }
}

// ---------------------------------------------------------------------------------------------
// the citations

const citingFiles = (): Array<string> => {
  const out: Array<string> = []
  const walk = (dir: string) => {
    if (!fs.existsSync(path.join(root, dir))) return
    for (const entry of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = path.join(dir, entry.name)
      if (entry.isDirectory()) {
        if (entry.name !== "node_modules" && entry.name !== "api" && !entry.name.startsWith("_")) walk(rel)
      } else if (/\.(ts|md)$/.test(entry.name)) out.push(rel)
    }
  }
  for (const dir of ["src", "test", "examples", "bench", "docs"]) walk(dir)
  return [
    "README.md",
    ...out
      .filter((f) => f !== "docs/reliability-scenarios.md" && f !== "docs/otp-semantics.md")
      .filter((f) => f !== "docs/README.md")
      .sort()
  ]
}

/** `#84`, `#71–#80`, `#5, #6`, `U #21–#23, D #21` after a head, as [qualifier, from, to]. */
const numberList = (text: string): Array<readonly [string, number, number]> => {
  const out: Array<readonly [string, number, number]> = []
  let rest = text
  let first = true
  for (;;) {
    const m = (
      first
        ? /^\s*\(?\s*(?:([UD]) )?#(\d+)(?:\s*[–-]\s*#?(\d+))?/
        : /^\s*(?:,|;|and)\s*(?:([UD]) )?#(\d+)(?:\s*[–-]\s*#?(\d+))?/
    ).exec(rest)
    if (!m) return out
    out.push([m[1] ?? "", Number(m[2]), Number(m[3] ?? m[2])])
    rest = rest.slice(m[0].length)
    first = false
  }
}

export const checkCitations = (): Array<string> => {
  const problems: Array<string> = []
  const t = loadTargets()
  let count = 0
  for (const file of citingFiles()) {
    read(file)
      .split("\n")
      .forEach((line, i) => {
        const at = `${file}:${i + 1}`
        const bad = (what: string) => problems.push(`${at}: ${what} does not resolve in docs/`)
        // C.n #k
        for (const m of line.matchAll(/\b(C\.\d+)\b/g)) {
          const items = t.scenarios.get(m[1]!)
          count++
          if (items === undefined) {
            bad(m[1]!)
            continue
          }
          for (const [, from, to] of numberList(line.slice(m.index! + m[0].length))) {
            for (const n of new Set([from, to])) if (!items.has(n)) bad(`${m[1]} #${n}`)
          }
        }
        // T-XXX [U|D] #k
        for (const m of line.matchAll(/\b(T-[A-Z]+)\b/g)) {
          count++
          if (!t.inventories.has(m[1]!)) {
            bad(m[1]!)
            continue
          }
          for (const [q, from, to] of numberList(line.slice(m.index! + m[0].length))) {
            const rows = t.inventories.get(q === "" ? m[1]! : `${m[1]} ${q}`)
            for (const n of new Set([from, to]))
              if (rows === undefined || !rows.has(n)) bad(`${m[1]}${q ? ` ${q}` : ""} #${n}`)
          }
        }
        // §x.y, house-style §x.y, §a–b ranges
        for (const m of line.matchAll(/(house-style )?§(\d+(?:\.\d+)*)(?:\s*[–-]\s*§?(\d+(?:\.\d+)*))?/g)) {
          count++
          const sections = m[1] ? t.styleSections : t.otpSections
          for (const s of [m[2]!, m[3]].filter((x): x is string => x !== undefined)) {
            if (!sections.has(s)) bad(`${m[1] ? "house-style " : ""}§${s}`)
          }
        }
        // Dn (a decision) and B.n (a technique)
        for (const m of line.matchAll(/(?<![\w.$-])D(\d+)\b(?![\w.(<])/g)) {
          count++
          if (!t.decisions.has(Number(m[1]))) bad(`D${m[1]}`)
        }
        for (const m of line.matchAll(/(?<![\w.])B\.(\d+)\b/g)) {
          count++
          if (!t.techniques.has(Number(m[1]))) bad(`B.${m[1]}`)
        }
      })
  }
  if (count === 0) problems.push("citations: found no citation at all (is the scan broken?)")
  return problems
}

/** Links in README.md and docs/*.md: they resolve, and README's links to files are absolute. */
export const checkLinks = (): Array<string> => {
  const problems: Array<string> = []
  const repo = repositoryUrl()
  const files = [
    "README.md",
    ...fs
      .readdirSync(path.join(root, "docs"))
      .filter((f) => f.endsWith(".md"))
      .map((f) => `docs/${f}`)
  ]
  for (const file of files) {
    let fence = false
    read(file)
      .split("\n")
      .forEach((line, i) => {
        if (/^\s*```/.test(line)) fence = !fence
        if (fence) return
        const at = `${file}:${i + 1}`
        for (const m of line.matchAll(/\]\(([^)\s]+)\)/g)) {
          const target = m[1]!.replace(/#.*$/, "")
          if (target === "" || /^mailto:/.test(target)) continue
          if (/^https?:\/\//.test(target)) {
            if (repo !== undefined && target.startsWith(`${repo}/`)) {
              const p = /^\/(?:blob|tree)\/[^/]+\/(.+)$/.exec(target.slice(repo.length))
              if (p && !fs.existsSync(path.join(root, decodeURIComponent(p[1]!))))
                problems.push(`${at}: ${m[1]} names ${p[1]}, which is not in the repository`)
            }
            continue
          }
          if (file === "README.md") {
            problems.push(
              `${at}: ${m[1]} is relative; README links must be absolute (${repo ?? "<repository>"}/blob/main/...) to work on the registry's page`
            )
            continue
          }
          if (!fs.existsSync(path.join(root, path.dirname(file), target)))
            problems.push(`${at}: ${m[1]} does not exist`)
        }
      })
  }
  return problems
}

if (import.meta.filename === process.argv[1] || process.argv[1]?.endsWith("scripts/citations.ts")) {
  const problems = [...checkCitations(), ...checkLinks()]
  if (problems.length > 0) {
    console.error(problems.join("\n"))
    console.error(`\ncitations: ${problems.length} problem(s)`)
    process.exit(1)
  }
  console.log("citations: every citation and link resolves")
}
