/**
 * `npm run bench` runs every `bench/*.bench.ts` in turn (or only those whose
 * name contains one of the command-line arguments: `npm run bench -- pool`).
 * Each bench module default-exports an async function that prints its own table.
 *
 * The benches re-exec themselves with `--expose-gc` so heap figures are measured
 * after a full collection.
 */
import { spawnSync } from "node:child_process"
import { readdirSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

const here = dirname(fileURLToPath(import.meta.url))

if (typeof (globalThis as { gc?: unknown }).gc !== "function") {
  const r = spawnSync(
    process.execPath,
    [
      "--expose-gc",
      "--max-old-space-size=8192",
      "--import",
      "tsx",
      fileURLToPath(import.meta.url),
      ...process.argv.slice(2)
    ],
    {
      stdio: "inherit"
    }
  )
  process.exit(r.status ?? 1)
}

const filters = process.argv.slice(2)
const all = readdirSync(here)
const files = all
  .filter((f) => f.endsWith(".bench.ts"))
  .filter(
    (f) =>
      filters.length === 0 ||
      // an exact name (`supervisor`) picks that file alone; otherwise any file containing the word
      filters.some((x) => f === `${x}.bench.ts` || (!all.includes(`${x}.bench.ts`) && f.includes(x)))
  )
  .sort()

console.log(`# effect-otp benchmarks (node ${process.version}, ${new Date().toISOString()})`)
console.log("Every figure is a median over several runs; ratios compare figures measured in this same process.")
for (const f of files) {
  const mod = (await import(pathToFileURL(join(here, f)).href)) as { default: () => Promise<void> }
  console.log(`\n# ${f}`)
  await mod.default()
}
