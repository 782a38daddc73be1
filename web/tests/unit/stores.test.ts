import { describe, it, expect, vi, beforeEach, afterEach } from 'vitest'
import { setActivePinia, createPinia } from 'pinia'
import { useModels } from '@/stores/models'
import { useToasts } from '@/stores/toasts'
import { ApiError } from '@/api/client'

beforeEach(() => setActivePinia(createPinia()))
afterEach(() => vi.unstubAllGlobals())

function json(body: unknown, status = 200) {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } })
}

describe('models store', () => {
  it('follows model events from the feed', () => {
    const m = useModels()
    m.items = [{ id: 'smol', path: '/m/smol.gguf', state: 'unloaded' }]
    m.applyEvent({ type: 'model.loading', timestamp: '', data: { id: 'smol', progress: 0.5 } })
    expect(m.byId('smol')).toMatchObject({ state: 'loading', progress: 0.5 })
    expect(m.running.map((x) => x.id)).toEqual(['smol'])
    m.applyEvent({ type: 'model.loaded', timestamp: '', data: { id: 'smol', load_ms: 10 } })
    expect(m.byId('smol')?.state).toBe('loaded')
    m.applyEvent({ type: 'model.failed', timestamp: '', data: { id: 'smol', reason: 'out of memory' } })
    expect(m.byId('smol')).toMatchObject({ state: 'failed', error: 'out of memory' })
    m.applyEvent({ type: 'model.unloaded', timestamp: '', data: { id: 'smol', reason: 'requested' } })
    expect(m.byId('smol')?.state).toBe('unloaded')
  })

  it('reloads the list after a scan event', async () => {
    const f = vi.fn(async () => json({ models: [{ id: 'a', path: '/a', state: 'unloaded' }] }))
    vi.stubGlobal('fetch', f)
    const m = useModels()
    m.applyEvent({ type: 'models.scanned', timestamp: '', data: {} })
    await vi.waitFor(() => expect(m.items.map((x) => x.id)).toEqual(['a']))
    expect((f.mock.calls[0] as unknown as [string])[0]).toBe('/api/models')
  })

  it('keeps the error of a failed list for the page to show', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => json({ error: { message: 'database locked' } }, 500)))
    const m = useModels()
    await m.refresh()
    expect(m.error).toBeInstanceOf(ApiError)
    expect((m.error as ApiError).message).toBe('database locked')
    expect(m.loaded).toBe(true)
  })

  it('marks a model busy while it loads and says when the load fails', async () => {
    let release!: (r: Response) => void
    vi.stubGlobal(
      'fetch',
      vi.fn((url: string) =>
        url.endsWith('/load')
          ? new Promise<Response>((r) => (release = r))
          : Promise.resolve(json({ models: [{ id: 'org/x', path: '/x', state: 'unloaded' }] })),
      ),
    )
    const m = useModels()
    m.items = [{ id: 'org/x', path: '/x', state: 'unloaded' }]
    const p = m.load('org/x')
    expect(m.busy['org/x']).toBe('load')
    expect(m.byId('org/x')?.state).toBe('loading')
    release(json({ error: { message: 'not enough memory' } }, 507))
    await expect(p).rejects.toMatchObject({ message: 'not enough memory' })
    expect(m.busy['org/x']).toBeUndefined()
    expect(m.byId('org/x')?.state).toBe('unloaded')
  })
})

describe('toasts store', () => {
  it('shows errors in words and dismisses them', () => {
    vi.useFakeTimers()
    const t = useToasts()
    t.error(new ApiError('model not found', 404))
    t.push('info', 'saved')
    expect(t.items.map((x) => [x.kind, x.text])).toEqual([
      ['error', 'model not found'],
      ['info', 'saved'],
    ])
    vi.advanceTimersByTime(4000)
    expect(t.items.map((x) => x.text)).toEqual(['model not found'])
    t.dismiss(t.items[0].id)
    expect(t.items).toEqual([])
    vi.useRealTimers()
  })
})
