import { describe, it, expect, vi, afterEach } from 'vitest'
import { request, stream, errorMessage, ApiError, withQuery } from '@/api/client'
import { auth, setKey } from '@/api/auth'

afterEach(() => {
  vi.unstubAllGlobals()
  setKey('')
})

function respond(status: number, body: string, type = 'application/json') {
  return vi.fn(async () => new Response(body, { status, headers: { 'Content-Type': type } }))
}

describe('api client', () => {
  it('reads every error shape of the server as words', () => {
    expect(errorMessage({ error: { code: 'not_found', message: 'model x not found', param: 'id' } }, 'f')).toEqual({
      message: 'model x not found',
      code: 'not_found',
      param: 'id',
    })
    expect(errorMessage({ error: { message: 'bad', type: 'invalid_request_error' } }, 'f').message).toBe('bad')
    expect(errorMessage({ error: 'ollama says no' }, 'f').message).toBe('ollama says no')
    expect(errorMessage('nope', 'fallback').message).toBe('fallback')
  })

  it('sends the key as a bearer token and asks for one on 401', async () => {
    setKey('secret')
    const f = respond(401, JSON.stringify({ error: { message: 'a valid API key is needed' } }))
    vi.stubGlobal('fetch', f)
    await expect(request('GET', '/api/models')).rejects.toMatchObject({ status: 401, message: 'a valid API key is needed' })
    const headers = (f.mock.calls[0] as unknown as [string, RequestInit])[1].headers as Headers
    expect(headers.get('Authorization')).toBe('Bearer secret')
    expect(auth.needed).toBe(true)
    expect(auth.reason).toBe('a valid API key is needed')
  })

  it('says when the server cannot be reached', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => Promise.reject(new TypeError('Failed to fetch'))))
    const e = (await request('GET', '/api/models').catch((x: unknown) => x)) as ApiError
    expect(e).toBeInstanceOf(ApiError)
    expect(e.status).toBe(0)
  })

  it('builds queries without empty values', () => {
    expect(withQuery('/a', { x: 1, y: undefined, z: '', w: 'a b' })).toBe('/a?x=1&w=a+b')
    expect(withQuery('/a?k=1', { x: true })).toBe('/a?k=1&x=true')
  })

  it('streams SSE events with JSON data parsed', async () => {
    const body = 'event: delta\ndata: {"text":"he"}\n\nevent: delta\ndata: {"text":"llo"}\n\ndata: [DONE]\n\n'
    vi.stubGlobal('fetch', respond(200, body, 'text/event-stream'))
    const got: Array<[string, unknown]> = []
    await stream('/api/chat/send', {}, (ev, data) => got.push([ev, data]))
    expect(got).toEqual([
      ['delta', { text: 'he' }],
      ['delta', { text: 'llo' }],
      ['message', '[DONE]'],
    ])
  })

  it('turns an error before the stream into an ApiError', async () => {
    vi.stubGlobal('fetch', respond(400, JSON.stringify({ error: { message: 'session is busy' } })))
    await expect(stream('/api/chat/send', {}, () => {})).rejects.toMatchObject({ status: 400, message: 'session is busy' })
  })
})
