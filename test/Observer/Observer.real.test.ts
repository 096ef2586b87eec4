/**
 * The Observer page in a real browser: Chromium (the one inside the npm
 * package @sparticuz/chromium) driven by playwright-core, on the page of the
 * running demo app (examples/observer.ts started as its own process on a free
 * 127.0.0.1 port). The app's own HTTP route crashes a session; the page must
 * show the crash with its cause and the session's new pid without a reload.
 *
 * Everything started here is stopped in afterAll, by PID, whatever happened.
 *
 * The screenshot goes to a temporary file; `OBSERVER_SCREENSHOT=docs/observer.png`
 * writes it where the README shows it (a test run does not touch tracked files
 * unless asked).
 */
import chromium from "@sparticuz/chromium"
import { type ChildProcess, spawn } from "node:child_process"
import { statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { type Browser, chromium as playwright, type Page } from "playwright-core"
import { afterAll, assert, beforeAll, describe, it } from "vitest"

const root = fileURLToPath(new URL("../..", import.meta.url))

let app: ChildProcess | undefined
let appOutput = ""
let browser: Browser | undefined
let page: Page | undefined
let observerUrl = ""
let appUrl = ""

/** Starts the demo app in its own process group; resolves with the URL it prints. */
const startApp = () =>
  new Promise<string>((resolve, reject) => {
    const child = spawn(`${root}node_modules/.bin/tsx`, ["examples/observer.ts"], {
      cwd: root,
      // actions on, so the page's terminate button can be exercised too (they are off by default)
      env: { ...process.env, PORT: "0", ACTIONS: "1" },
      detached: true,
      stdio: ["ignore", "pipe", "pipe"]
    })
    app = child
    // last resort if this process ends without afterAll (the app runs detached, in its own group)
    process.once("exit", () => {
      try {
        if (child.pid !== undefined && child.exitCode === null) process.kill(-child.pid, "SIGKILL")
      } catch {
        // already gone
      }
    })
    const timer = setTimeout(() => reject(new Error(`the app printed no URL in 60 s:\n${appOutput}`)), 60_000)
    const onData = (chunk: Buffer) => {
      appOutput += chunk.toString()
      const m = /Observer: (http:\/\/\S+)/.exec(appOutput)
      if (m) {
        clearTimeout(timer)
        resolve(m[1]!)
      }
    }
    child.stdout!.on("data", onData)
    child.stderr!.on("data", onData)
    child.on("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`the app exited (${code}) before printing its URL:\n${appOutput}`))
    })
  })

/** Stops the app's whole process group (tsx runs the program in a child process). */
const stopApp = async () => {
  const child = app
  if (child?.pid === undefined || child.exitCode !== null) return
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  try {
    process.kill(-child.pid, "SIGTERM")
  } catch {
    return
  }
  const timeout = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), 5_000))
  if ((await Promise.race([exited, timeout])) === "timeout") {
    try {
      process.kill(-child.pid, "SIGKILL")
    } catch {
      // already gone
    }
  }
}

beforeAll(async () => {
  const [url, executablePath] = await Promise.all([startApp(), chromium.executablePath()])
  observerUrl = url
  appUrl = new URL("/", url).href
  browser = await playwright.launch({ executablePath, args: chromium.args, headless: true })
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
  page.on("pageerror", (error) => {
    appOutput += `\n[page error] ${error.message}`
  })
}, 120_000)

afterAll(async () => {
  await browser?.close().catch(() => {})
  await stopApp()
})

const pidOf = (user: string) => page!.getAttribute(`li.node[data-id="session:${user}"]`, "data-pid")

describe("Observer page (Chromium)", () => {
  it("shows the app's tree live: every part, each session with a pid", async () => {
    const p = page!
    await p.goto(observerUrl)
    await p.waitForSelector("#status.live", { timeout: 10_000 })
    await p.waitForSelector('li.node[data-id="session:alice"][data-pid]', { timeout: 10_000 })
    const kinds = await p.$$eval("li.node", (nodes) => nodes.map((n) => n.getAttribute("data-kind")))
    for (const kind of [
      "Supervisor",
      "DynamicSupervisor",
      "Registry",
      "Pool",
      "Connection",
      "RateLimitedSupervisor",
      "TaskSupervisor"
    ]) {
      assert.include(kinds, kind, `the tree shows a ${kind}`)
    }
    const sessions = await p.$$eval('li.node[data-id^="session:"]', (nodes) => nodes.length)
    assert.isAtLeast(sessions, 6)
  })

  it("a session crashed through the app shows in the crash log with its cause, and its new pid appears without reload", async () => {
    const p = page!
    const before = await pidOf("alice")
    assert.isNotNull(before)
    // a marker in the page's window: a reload would lose it
    await p.evaluate(() => ((globalThis as any).__notReloaded = true))

    const response = await fetch(new URL("/sessions/alice/crash", appUrl), { method: "POST" })
    assert.strictEqual(response.status, 200, await response.text())

    const entry = p.locator("#log li", { hasText: "crash requested over HTTP" })
    await entry.waitFor({ timeout: 10_000 })
    const text = await entry.innerText()
    assert.include(text, "session:alice")
    assert.include(text, `#${before}`)
    assert.include(text, "BadMessage")
    await p.waitForFunction(
      (old) => {
        const doc = (globalThis as any).document
        const pid = doc.querySelector('li.node[data-id="session:alice"]')?.getAttribute("data-pid")
        return pid != null && pid !== old
      },
      before,
      { timeout: 10_000 }
    )
    const after = await pidOf("alice")
    assert.notStrictEqual(after, before)
    await entry.locator(".next-pid", { hasText: `#${after}` }).waitFor({ timeout: 10_000 })
    assert.isTrue(await p.evaluate(() => (globalThis as any).__notReloaded === true))
  })

  it("shows a node's details, and the page as a screenshot (docs/observer.png)", async () => {
    const p = page!
    await p.click('li.node[data-id="session:alice"] .label')
    await p.waitForSelector("#details-body table")
    const details = await p.innerText("#details-body")
    assert.include(details, "session:alice")
    assert.match(details, /restarts\s+[1-9]/)
    // some seconds of load so the plots have a shape
    await p.waitForTimeout(8_000)
    const file = process.env.OBSERVER_SCREENSHOT
      ? join(root, process.env.OBSERVER_SCREENSHOT)
      : join(tmpdir(), `observer-${process.pid}.png`)
    await p.screenshot({ path: file })
    assert.isAbove(statSync(file).size, 20_000, "a screenshot with something on it")
    assert.notInclude(appOutput, "[page error]")
  })

  it("with actions enabled, the page terminates a session (it leaves the tree) and restarts a Supervisor's child (new pid)", async () => {
    const p = page!
    const dialogs: Array<string> = []
    p.on("dialog", (dialog) => {
      dialogs.push(dialog.message())
      void dialog.dismiss()
    })
    await p.click('li.node[data-id="session:bob"] .label')
    await p.click('#details-body button[data-op="terminate"]')
    await p.waitForSelector('li.node[data-id="session:bob"]', { state: "detached", timeout: 10_000 })
    // a static Supervisor's child can also be restarted (a DynamicSupervisor's child has no restart button)
    assert.strictEqual(await p.locator('#details-body button[data-op="restart"]').count(), 0)
    const before = await p.getAttribute('li.node[data-id="reports"]', "data-pid")
    await p.click('li.node[data-id="reports"] > .row .label')
    await p.click('#details-body button[data-op="restart"]')
    await p.waitForFunction(
      (old) => {
        const pid = (globalThis as any).document.querySelector('li.node[data-id="reports"]')?.getAttribute("data-pid")
        return pid != null && pid !== old
      },
      before,
      { timeout: 10_000 }
    )
    assert.deepStrictEqual(dialogs, [])
  })
})
