// Starting the real binaries for the end-to-end tests: the one server every test shares
// (global-setup.ts) and servers of their own for tests that need another set-up (a key).
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

export const ROOT = resolve(process.cwd(), '..')

export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => ok(port))
    })
    s.on('error', fail)
  })
}

export function need(what: string, path: string | undefined): string {
  if (path && existsSync(path)) return path
  throw new Error(`${what} not found (${path ?? 'not set'}): the end-to-end tests need it`)
}

export async function waitFor(url: string, child: ChildProcess, log: () => string): Promise<void> {
  const t0 = Date.now()
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${url}: the process exited (${child.exitCode}):\n${log()}`)
    try {
      const r = await fetch(url)
      if (r.ok) return
    } catch {
      /* not yet */
    }
    if (Date.now() - t0 > 60_000) throw new Error(`${url} did not answer within 60 s:\n${log()}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** The first line a process prints (the test hub prints its URL once serving). */
export function firstLine(child: ChildProcess, log: () => string): Promise<string> {
  return new Promise((ok, fail) => {
    let buf = ''
    const timer = setTimeout(() => fail(new Error(`no URL from the test hub:\n${log()}`)), 60_000)
    child.stdout?.on('data', (b: Buffer) => {
      buf += b.toString()
      const nl = buf.indexOf('\n')
      if (nl !== -1) {
        clearTimeout(timer)
        ok(buf.slice(0, nl).trim())
      }
    })
    child.on('exit', (code) => fail(new Error(`the test hub exited (${code}):\n${log()}`)))
  })
}

export function start(bin: string, args: string[], env: Record<string, string>): { child: ChildProcess; log: () => string } {
  let out = ''
  const child = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  const keep = (b: Buffer) => {
    out = (out + b.toString()).slice(-20000)
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  return { child, log: () => out }
}

export interface Served {
  base: string
  dir: string
  stop: () => Promise<void>
}

/**
 * `llama-dashboard serve` over fresh config/data folders, with `models` (link name → GGUF
 * path) in its models folder, `args` added to serve's and `env` to its environment; answers
 * once /health does.
 */
export async function serve(models: Record<string, string>, args: string[] = [], env: Record<string, string> = {}): Promise<Served> {
  const target = process.env.CARGO_TARGET_DIR ?? join(ROOT, 'target')
  const bin = need('the llama-dashboard binary', process.env.LLAMA_DASHBOARD_BIN ?? join(target, 'debug/llama-dashboard'))
  const dir = mkdtempSync(join(tmpdir(), 'ld-e2e-'))
  const folder = join(dir, 'models')
  mkdirSync(folder)
  mkdirSync(join(dir, 'home'))
  for (const [name, path] of Object.entries(models)) symlinkSync(path, join(folder, `${name}.gguf`))
  const port = await freePort()
  const server = start(
    bin,
    ['--config-dir', join(dir, 'c'), '--data-dir', join(dir, 'd'), 'serve', '--port', String(port), '--models-dir', folder, ...args],
    { HOME: join(dir, 'home'), ...env },
  )
  const base = `http://127.0.0.1:${port}`
  await waitFor(`${base}/health`, server.child, server.log)
  return {
    base,
    dir,
    stop: async () => {
      await stopAll([server.child])
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

export async function stopAll(procs: ChildProcess[]): Promise<void> {
  for (const p of procs) p.kill('SIGTERM')
  await new Promise((r) => setTimeout(r, 500))
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL')
}
