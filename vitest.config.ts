import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

// Two projects. "unit" is everything in-process (TestClock, no real time, runs files in parallel).
// "real" is the real-parts suites (`*.real.test.ts`: an embedded PostgreSQL, runner processes, a browser):
// they start their own parts, take real seconds, and run one file at a time so two suites never fight
// for the machine's two cores. `npm test` runs unit, then real.
export default defineConfig({
  resolve: {
    alias: [{ find: /^effect-otp$/, replacement: fileURLToPath(new URL("./src/index.ts", import.meta.url)) }]
  },
  test: {
    testTimeout: 30_000,
    projects: [
      {
        extends: true,
        test: { name: "unit", include: ["test/**/*.test.ts"], exclude: ["test/**/*.real.test.ts"] }
      },
      {
        // compile-time tests (expectTypeOf): tsc checks test/types/*.test-d.ts; a type error fails the run
        extends: true,
        test: {
          name: "types",
          include: [],
          typecheck: {
            enabled: true,
            only: true,
            include: ["test/types/**/*.test-d.ts"],
            tsconfig: "tsconfig.json",
            ignoreSourceErrors: true
          }
        }
      },
      {
        extends: true,
        test: {
          name: "real",
          include: ["test/**/*.real.test.ts"],
          fileParallelism: false,
          testTimeout: 300_000,
          hookTimeout: 120_000
        }
      }
    ]
  }
})
