// The only place that talks HTTP: JSON requests, SSE streams and WebSockets, with the API key
// and the server's error shapes handled once. Pages use the typed calls in `api/index.ts`.
import { auth, askForKey } from './auth'
import { readSse, type SseEvent } from './sse'

/** An error the server (or the network) gave, in words a person can read. */
export class ApiError extends Error {
  constructor(
    message: string,
    public readonly status: number,
    public readonly code?: string,
    public readonly param?: string,
  ) {
    super(message)
    this.name = 'ApiError'
  }
}

export type Query = Record<string, string | number | boolean | undefined | null>

export interface RequestOptions {
  query?: Query
  body?: unknown
  signal?: AbortSignal
  /** Return the raw Response (downloads, text). */
  raw?: boolean
  /** Send this API key instead of the tab's (trying a key before keeping it). */
  key?: string
}

export function withQuery(path: string, query?: Query): string {
  if (!query) return path
  const params = new URLSearchParams()
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined && v !== null && v !== '') params.set(k, String(v))
  }
  const s = params.toString()
  return s ? `${path}${path.includes('?') ? '&' : '?'}${s}` : path
}

function headers(json: boolean, key = auth.key): Headers {
  const h = new Headers({ Accept: 'application/json' })
  if (json) h.set('Content-Type', 'application/json')
  if (key) h.set('Authorization', `Bearer ${key}`)
  return h
}

/** The message of any of the server's error shapes (ours, OpenAI's, llama-server's, Ollama's). */
export function errorMessage(body: unknown, fallback: string): { message: string; code?: string; param?: string } {
  if (body && typeof body === 'object') {
    const b = body as Record<string, unknown>
    const e = b.error
    if (typeof e === 'string') return { message: e }
    if (e && typeof e === 'object') {
      const o = e as Record<string, unknown>
      const code = typeof o.code === 'string' ? o.code : typeof o.type === 'string' ? o.type : undefined
      const param = typeof o.param === 'string' ? o.param : undefined
      if (typeof o.message === 'string') return { message: o.message, code, param }
    }
    if (typeof b.message === 'string') return { message: b.message }
  }
  return { message: fallback }
}

async function failure(resp: Response): Promise<ApiError> {
  const text = await resp.text().catch(() => '')
  let body: unknown = text
  try {
    body = JSON.parse(text)
  } catch {
    /* not JSON: the text itself */
  }
  const fallback = text && text.length < 300 ? text : `${resp.status} ${resp.statusText}`
  const { message, code, param } = errorMessage(body, fallback)
  if (resp.status === 401) askForKey(message)
  return new ApiError(message, resp.status, code, param)
}

async function send(method: string, path: string, opts: RequestOptions): Promise<Response> {
  const hasBody = opts.body !== undefined
  let resp: Response
  try {
    resp = await fetch(withQuery(path, opts.query), {
      method,
      headers: headers(hasBody, opts.key),
      body: hasBody ? JSON.stringify(opts.body) : undefined,
      signal: opts.signal,
    })
  } catch (e) {
    if (e instanceof DOMException && e.name === 'AbortError') throw e
    throw new ApiError('The server cannot be reached. Is llama-dashboard still running?', 0, 'network')
  }
  if (!resp.ok) throw await failure(resp)
  return resp
}

/**
 * Tries `key` on the management API (what the dashboard needs) without keeping it: an
 * `ApiError` says why it was refused (401: not a key; 403: a key that may not manage).
 */
export async function checkKey(key: string): Promise<void> {
  await send('GET', '/api/models', { key: key.trim() })
}

export async function request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
  const resp = await send(method, path, opts)
  if (opts.raw) return resp as unknown as T
  const text = await resp.text()
  if (!text) return undefined as T
  try {
    return JSON.parse(text) as T
  } catch {
    return text as unknown as T
  }
}

export const get = <T>(path: string, query?: Query, signal?: AbortSignal) =>
  request<T>('GET', path, { query, signal })
export const post = <T>(path: string, body?: unknown, query?: Query) =>
  request<T>('POST', path, { body: body ?? {}, query })
export const put = <T>(path: string, body?: unknown, query?: Query) =>
  request<T>('PUT', path, { body: body ?? {}, query })
export const del = <T>(path: string, query?: Query, body?: unknown) =>
  request<T>('DELETE', path, { query, body })

/**
 * POSTs `body` and reads the answer as Server-Sent Events until the stream ends or `signal`
 * aborts it. A `data` that is JSON is parsed; errors before the stream are `ApiError`s.
 */
export async function stream(
  path: string,
  body: unknown,
  onEvent: (event: string, data: unknown, raw: SseEvent) => void,
  signal?: AbortSignal,
): Promise<void> {
  const resp = await send('POST', path, { body, signal })
  if (!resp.body) throw new ApiError('The server sent no stream.', resp.status)
  await readSse(resp.body, (e) => {
    let data: unknown = e.data
    try {
      data = JSON.parse(e.data)
    } catch {
      /* plain text (e.g. [DONE]) */
    }
    onEvent(e.event, data, e)
  })
}

/** `ws://` or `wss://` URL of a path on this server, with the key (browsers cannot set headers). */
export function socketUrl(path: string, query?: Query): string {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:'
  return `${proto}//${location.host}${withQuery(path, { ...query, api_key: auth.key || undefined })}`
}

export interface Socket {
  close(): void
  readonly connected: boolean
}

/**
 * A WebSocket that reconnects (1 s, doubling to 15 s) until closed. Messages are parsed as
 * JSON when they are. `onState` says when it is connected.
 */
export function socket(
  path: string,
  onMessage: (data: unknown) => void,
  opts: { query?: Query; onState?: (connected: boolean) => void } = {},
): Socket {
  let ws: WebSocket | null = null
  let closed = false
  let delay = 1000
  let timer: ReturnType<typeof setTimeout> | undefined
  const state = { connected: false }
  const open = () => {
    if (closed) return
    ws = new WebSocket(socketUrl(path, opts.query))
    ws.onopen = () => {
      delay = 1000
      state.connected = true
      opts.onState?.(true)
    }
    ws.onmessage = (m) => {
      let data: unknown = m.data
      if (typeof m.data === 'string') {
        try {
          data = JSON.parse(m.data)
        } catch {
          /* text */
        }
      }
      onMessage(data)
    }
    ws.onclose = () => {
      state.connected = false
      opts.onState?.(false)
      if (closed) return
      timer = setTimeout(open, delay)
      delay = Math.min(delay * 2, 15000)
    }
  }
  open()
  return {
    close() {
      closed = true
      clearTimeout(timer)
      ws?.close()
    },
    get connected() {
      return state.connected
    },
  }
}
