// Starts the real `llama-dashboard serve` (the debug binary the Rust test run built) on a free
// port, over temporary config/data folders, with the test model linked in as `smol`, and the
// local fake Hugging Face hub / Ollama registry (crates/testhub's `testhub` binary) beside it.
// Under CI=true a missing binary, model or browser fails the run.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

const ROOT = resolve(process.cwd(), '..')

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => ok(port))
    })
    s.on('error', fail)
  })
}

function need(what: string, path: string | undefined): string {
  if (path && existsSync(path)) return path
  throw new Error(`${what} not found (${path ?? 'not set'}): the end-to-end tests need it`)
}

async function waitFor(url: string, child: ChildProcess, log: () => string): Promise<void> {
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
function firstLine(child: ChildProcess, log: () => string): Promise<string> {
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

function start(bin: string, args: string[], env: Record<string, string>): { child: ChildProcess; log: () => string } {
  let out = ''
  const child = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  const keep = (b: Buffer) => {
    out = (out + b.toString()).slice(-20000)
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  return { child, log: () => out }
}

export default async function globalSetup() {
  const target = process.env.CARGO_TARGET_DIR ?? join(ROOT, 'target')
  const bin = need('the llama-dashboard binary', process.env.LLAMA_DASHBOARD_BIN ?? join(target, 'debug/llama-dashboard'))
  const hubBin = join(target, 'debug/testhub')
  const model = need('the test model (LLAMA_DASHBOARD_TEST_MODEL)', process.env.LLAMA_DASHBOARD_TEST_MODEL)
  need('Chromium', process.env.CHROMIUM ?? '/usr/bin/chromium')

  const dir = mkdtempSync(join(tmpdir(), 'ld-e2e-'))
  const models = join(dir, 'models')
  mkdirSync(models)
  mkdirSync(join(dir, 'home'))
  symlinkSync(model, join(models, 'smol.gguf'))

  const procs: ChildProcess[] = []
  const env: Record<string, string> = { HOME: join(dir, 'home') }
  if (existsSync(hubBin)) {
    const hub = start(hubBin, [], {})
    procs.push(hub.child)
    const url = await firstLine(hub.child, hub.log)
    env.LLAMA_DASHBOARD_DOWNLOAD_HF_ENDPOINT = url
    env.LLAMA_DASHBOARD_DOWNLOAD_OLLAMA_LIBRARY_URL = url
    env.LLAMA_DASHBOARD_DOWNLOAD_INSECURE = 'true'
    process.env.E2E_HUB = url
  } else if (process.env.CI) {
    throw new Error(`${hubBin} not found: the download test needs the test hub (crates/testhub)`)
  }

  const port = await freePort()
  const server = start(
    bin,
    [
      '--config-dir', join(dir, 'c'),
      '--data-dir', join(dir, 'd'),
      'serve',
      '--port', String(port),
      '-t', '1',
      '--parallel', '2',
      '-c', '2048',
      '--models-dir', models,
    ],
    env,
  )
  procs.push(server.child)
  const base = `http://127.0.0.1:${port}`
  await waitFor(`${base}/health`, server.child, server.log)
  process.env.E2E_BASE_URL = base
  process.env.E2E_DIR = dir
  writeFileSync(join(dir, 'base-url'), base)
  mkdirSync(join(ROOT, 'target/ui-screenshots'), { recursive: true })

  return async () => {
    for (const p of procs) p.kill('SIGTERM')
    await new Promise((r) => setTimeout(r, 500))
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  }
}
