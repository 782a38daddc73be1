// Starts the real `llama-dashboard serve` (the debug binary the Rust test run built) on a free
// port, over temporary config/data folders, with the test model linked in as `smol` (and the
// second test model, Gemma 3 270M, as `tiny-gemma`, for compare mode), and the local fake
// Hugging Face hub / Ollama registry (crates/testhub's `testhub` binary) beside it. Under
// CI=true a missing binary, model or browser fails the run.
import type { ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT, firstLine, need, serve, start, stopAll } from './server'

export default async function globalSetup() {
  const target = process.env.CARGO_TARGET_DIR ?? join(ROOT, 'target')
  const hubBin = join(target, 'debug/testhub')
  const model = need('the test model (LLAMA_DASHBOARD_TEST_MODEL)', process.env.LLAMA_DASHBOARD_TEST_MODEL)
  need('Chromium', process.env.CHROMIUM ?? '/usr/bin/chromium')
  const models: Record<string, string> = { smol: model }
  const model2 = process.env.LLAMA_DASHBOARD_TEST_MODEL_2
  if (model2 && existsSync(model2)) {
    models['tiny-gemma'] = model2
    process.env.E2E_MODEL_2 = 'tiny-gemma'
  } else if (process.env.CI) {
    need('the second test model (LLAMA_DASHBOARD_TEST_MODEL_2)', model2)
  }

  const procs: ChildProcess[] = []
  const env: Record<string, string> = {}
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

  const server = await serve(models, ['-t', '1', '--parallel', '2', '-c', '2048'], env)
  process.env.E2E_BASE_URL = server.base
  process.env.E2E_DIR = server.dir
  writeFileSync(join(server.dir, 'base-url'), server.base)
  mkdirSync(join(ROOT, 'target/ui-screenshots'), { recursive: true })

  return async () => {
    await server.stop()
    await stopAll(procs)
  }
}
