import { describe, it, expect, beforeEach, afterEach, vi } from 'vitest'
import { setActivePinia, createPinia } from 'pinia'
import { useChat } from '@/stores/chat'
import type { ChatMessage } from '@/api'

beforeEach(() => setActivePinia(createPinia()))
afterEach(() => vi.unstubAllGlobals())

const msg = (id: number, parent: number | null, role: string, content = ''): ChatMessage => ({
  id,
  parent_id: parent,
  role,
  content,
  created_at: 0,
})

describe('chat store', () => {
  it('builds the shown branch from a stream of events', () => {
    const c = useChat()
    c.apply('message', { type: 'message', message: msg(1, null, 'user', 'Hi') })
    c.apply('message', { type: 'message', message: { ...msg(2, 1, 'assistant'), finish_reason: 'generating' } })
    c.apply('delta', { type: 'delta', message_id: 2, content: 'Hel' })
    c.apply('delta', { type: 'delta', message_id: 2, content: 'lo' })
    c.apply('reasoning', { type: 'reasoning', message_id: 2, reasoning: 'think' })
    expect(c.branch.map((m) => [m.id, m.content])).toEqual([
      [1, 'Hi'],
      [2, 'Hello'],
    ])
    expect(c.branch[1].streaming).toBe(true)
    expect(c.branch[1].reasoning).toBe('think')
    c.apply('done', { type: 'done', message_id: 2, message: { ...msg(2, 1, 'assistant', 'Hello'), completion_tokens: 2, finish_reason: 'stop' } })
    expect(c.branch[1]).toMatchObject({ streaming: false, completion_tokens: 2, reasoning: 'think' })
  })

  it('keeps the first answer on the branch when two models answer', () => {
    const c = useChat()
    c.apply('message', { message: msg(1, null, 'user', 'Q') })
    c.apply('message', { message: { ...msg(2, 1, 'assistant'), model: 'a' } })
    c.apply('message', { message: { ...msg(3, 1, 'assistant'), model: 'b' } })
    expect(c.branch.map((m) => m.id)).toEqual([1, 2])
    expect(c.answers(c.messages[1]).map((m) => m.model)).toEqual(['a', 'b'])
  })

  it('shows an error on its answer, or on the page when it names none', () => {
    const c = useChat()
    c.apply('message', { message: msg(1, null, 'user', 'Q') })
    c.apply('message', { message: msg(2, 1, 'assistant') })
    c.apply('error', { type: 'error', message_id: 2, error: { message: 'model failed' } })
    expect(c.messages[2]).toMatchObject({ error: 'model failed', streaming: false })
    c.apply('error', { type: 'error', error: 'busy' })
    expect((c.error as Error).message).toBe('busy')
  })

  it('shows server tool calls on the answer and their results as tool messages', () => {
    const c = useChat()
    c.apply('message', { message: msg(1, null, 'user', 'Q') })
    c.apply('message', { message: msg(2, 1, 'assistant') })
    c.apply('tool_call', { type: 'tool_call', message_id: 2, server_tool_call: { step: 1, id: 'c1', name: 'date', arguments: '{}' } })
    c.apply('tool_result', {
      type: 'tool_result',
      message_id: 3,
      server_tool_result: { step: 1, id: 'c1', name: 'date', content: '2026-01-01', is_error: false },
      message: { ...msg(3, 2, 'tool', '2026-01-01'), name: 'date', tool_call_id: 'c1' },
    })
    c.apply('message', { message: msg(4, 3, 'assistant') })
    c.apply('delta', { message_id: 4, content: 'It is 2026.' })
    expect(c.messages[2].tool_calls).toEqual([{ id: 'c1', name: 'date', arguments: '{}' }])
    expect(c.branch.map((m) => [m.role, m.content])).toEqual([
      ['user', 'Q'],
      ['assistant', ''],
      ['tool', '2026-01-01'],
      ['assistant', 'It is 2026.'],
    ])
  })

  it('lists siblings and switches to the newest leaf under one', async () => {
    const c = useChat()
    c.session = { id: 's', title: '', models: ['m'], params: {}, active_leaf: 4, created_at: 0, updated_at: 0 }
    for (const m of [msg(1, null, 'user'), msg(2, 1, 'assistant'), msg(3, null, 'user'), msg(4, 3, 'assistant'), msg(5, 3, 'assistant')]) c.messages[m.id] = m
    c.activeLeaf = 2
    expect(c.siblings(c.messages[1]).map((m) => m.id)).toEqual([1, 3])
    const f = vi.fn(async () => new Response(JSON.stringify(c.session), { status: 200 }))
    vi.stubGlobal('fetch', f)
    await c.switchTo(c.messages[3])
    expect(c.activeLeaf).toBe(5)
    expect(c.branch.map((m) => m.id)).toEqual([3, 5])
    const [url, init] = f.mock.calls[0] as unknown as [string, RequestInit]
    expect(url).toBe('/api/chat/sessions/s')
    expect(init.method).toBe('PATCH')
    expect(JSON.parse(String(init.body))).toEqual({ active_leaf: 5 })
  })
})
