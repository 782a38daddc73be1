// Typed calls of the server's API, grouped by page. Shapes follow crates/server/src/api/*.rs
// (and /openapi.json); fields the pages do not use are left out.
import { get, post, put, del, request, stream, socket, withQuery } from './client'
export { ApiError } from './client'

export type ModelState = 'loaded' | 'loading' | 'unloaded' | 'unloading' | 'failed' | string

export interface ModelEntry {
  id: string
  path: string
  source?: string
  name?: string | null
  size?: number
  architecture?: string | null
  quantization?: string | null
  file_type?: number | null
  context_length?: number | null
  repo?: string | null
  mmproj?: string | null
  incomplete?: unknown
  missing_parts?: number[]
  state: ModelState
  progress?: number
  error?: string
  alias?: string | null
  favorite?: boolean
  benchmark?: string | null
  launch_params?: Record<string, unknown>
  expires_in_seconds?: number | null
  [k: string]: unknown
}

export interface ModelLive {
  id: string
  memory?: Record<string, number> | number | null
  busy_slots: number
  slots?: number
  queue: number
  requests?: number
  tokens_per_second?: number
  prompt_tokens_per_second?: number
}

export interface Resources {
  cpu: { cores: number; physical_cores?: number | null; usage_percent: number; brand?: string | null }
  memory: { total: number; used: number; available: number; process_rss?: number | null }
  gpus: Array<{ name?: string; description?: string; kind?: string; memory_total?: number; memory_free?: number; [k: string]: unknown }>
  model_dirs: Array<{ path: string; exists: boolean; disk_free?: number | null; disk_total?: number | null }>
  models: ModelLive[]
  uptime_seconds: number
}

/** What a model can do (`catalog::capabilities`): `chat`, `tools`, `embeddings`, ... */
export type Capabilities = string[]

export interface MemoryEstimate {
  weights_bytes: number
  kv_bytes: number
  compute_bytes: number
  total_bytes: number
  n_ctx: number
}

export interface SessionParams {
  temperature?: number
  top_p?: number
  top_k?: number
  min_p?: number
  max_tokens?: number
  seed?: number
  repeat_penalty?: number
  system_prompt?: string
  /** Server tools the answers may call: all, none, or names. */
  server_tools?: boolean | string[]
  [k: string]: unknown
}

export interface Session {
  id: string
  title: string
  models: string[]
  params: SessionParams
  active_leaf: number | null
  created_at: number
  updated_at: number
}

export interface Timings {
  predicted_n?: number
  predicted_per_second?: number
  prompt_n?: number
  prompt_per_second?: number
  [k: string]: unknown
}

/** A tool call an answer made (`arguments`: the JSON text the model wrote). */
export interface ToolCallRecord {
  id: string
  name: string
  arguments: string
}

export interface ChatMessage {
  id: number
  parent_id: number | null
  role: 'user' | 'assistant' | 'system' | 'tool' | string
  content: string
  reasoning?: string
  model?: string
  prompt_tokens?: number
  completion_tokens?: number
  timings?: Timings
  finish_reason?: string
  left_out?: number[]
  created_at: number
  /** Assistant messages: the server tools it called. */
  tool_calls?: ToolCallRecord[]
  /** Tool messages: the tool's name, the call answered, whether the result is an error. */
  name?: string
  tool_call_id?: string
  is_error?: boolean
  /** Filled in on this page: an error while streaming, whether it still streams. */
  error?: string
  streaming?: boolean
}

export interface History {
  session: Session
  messages: ChatMessage[]
  branch: number[]
}

/** A search result: a Hugging Face repository or an Ollama library model. */
export interface HubModel {
  id?: string
  name?: string
  downloads?: number
  likes?: number
  pulls?: number
  lastModified?: string
  updated?: string
  description?: string
  tags?: string[]
  sizes?: string[]
  capabilities?: string[]
}

export interface RepoFiles {
  repo?: string
  source?: string
  files?: Array<{ name: string; quantization?: string | null; size: number; parts: unknown[]; mmproj?: boolean; missing_parts?: number }>
  tags?: Array<{ tag: string; size?: number; context?: number; is_latest?: boolean; input?: string }>
  model?: HubModel
}

export interface DownloadTask {
  id: number
  label: string
  state: string
  done: number
  total: number | null
  speed: number
  eta_seconds: number | null
  files?: string[]
  /** Why it failed (state `failed`). */
  reason?: string
  [k: string]: unknown
}

export interface BenchParams {
  n_prompt: number
  n_gen: number
  reps: number
  threads: number
  n_batch?: number
  n_ubatch?: number
  n_gpu_layers?: number
}

export interface BenchRun {
  run_id: string
  model: string
  params: BenchParams
}

export interface BenchResult {
  test: string
  n_prompt: number
  n_gen: number
  avg_ts: number
  stddev_ts: number
}

export interface BenchStored {
  id: number
  model: string
  created_at: number
  params: BenchParams
  results: BenchResult[]
}

export interface McpServer {
  name: string
  transport: string
  state: string
  error?: string
  tools: number
  restarts: number
  enabled: boolean
  /** `stored` (editable here) or `flag` (given to the process at start). */
  origin: 'stored' | 'flag'
  config: unknown
}

export interface LogLine {
  /** Unix milliseconds. */
  timestamp: number
  level: string
  target: string
  message: string
}

export interface EventEnvelope {
  type: string
  timestamp: string
  data: Record<string, unknown>
}

const enc = encodeURIComponent

export type ChatStreamHandler = (event: string, data: unknown) => void

export const api = {
  models: {
    list: () => get<{ models: ModelEntry[]; skipped?: unknown[] }>('/api/models'),
    scan: () => post<{ models: number }>('/api/models/scan'),
    load: (id: string, params?: Record<string, unknown>) =>
      post<unknown>(`/api/models/${enc(id)}/load`, params ? { params } : {}),
    unload: (id: string) => post<unknown>(`/api/models/${enc(id)}/unload`),
    favorite: (id: string, favorite: boolean) => put<unknown>(`/api/models/${enc(id)}/favorite`, { favorite }),
    alias: (id: string, alias: string | null) => put<unknown>(`/api/models/${enc(id)}/alias`, { alias }),
    capabilities: (id: string) =>
      get<{ model: string; detected: Capabilities; override: Capabilities | null; effective: Capabilities }>(
        `/api/models/${enc(id)}/capabilities`,
      ),
    estimate: (model: string, params: Record<string, unknown>) =>
      post<{ model: string; estimate: MemoryEstimate; devices: unknown[] }>('/api/models/vram-estimate', { model, params }),
    details: (id: string) => get<Record<string, unknown>>(`/api/models/${enc(id)}/details`),
    config: (id: string) =>
      get<{ model: string; launch_params: Record<string, unknown>; effective: Record<string, any>; keys: string[] }>(
        `/api/models/${enc(id)}/config`,
      ),
    setConfig: (id: string, launch_params: Record<string, unknown>) =>
      put<unknown>(`/api/models/${enc(id)}/config`, { launch_params }),
    template: (id: string) => get<Record<string, unknown>>(`/api/models/${enc(id)}/template`),
    setTemplate: (id: string, template: string) => put<unknown>(`/api/models/${enc(id)}/template`, { template }),
    clearTemplate: (id: string) => del<unknown>(`/api/models/${enc(id)}/template`),
  },
  system: {
    resources: () => get<Resources>('/api/system/resources'),
    logs: (level?: string, limit = 500) => get<{ lines: LogLine[]; level: string }>('/api/system/logs', { level, limit }),
    setLogLevel: (level: string) => put<{ level: string }>('/api/system/log-level', { level }),
    /** New log lines at `level` or above (`/ws/logs`). */
    liveLogs: (level: string | undefined, onLine: (l: LogLine) => void, onState?: (c: boolean) => void) =>
      socket(
        '/ws/logs',
        (d) => {
          const m = d as { type?: string; data?: LogLine }
          if (m?.type === 'log' && m.data) onLine(m.data)
        },
        { query: { level }, onState },
      ),
  },
  /** llama-server's `/apply-template`: the prompt a conversation renders to. */
  applyTemplate: (model: string, messages: Array<{ role: string; content: string }>) =>
    post<{ prompt: string }>('/apply-template', { model, messages }),
  download: {
    search: (q: string, source: 'huggingface' | 'ollama', sort?: string) =>
      get<{ models: HubModel[]; source: string }>('/api/download/search', { q, source, sort, limit: 30 }),
    files: (repo: string, source: 'huggingface' | 'ollama') =>
      get<RepoFiles>('/api/download/files', { repo, source }),
    start: (body: { name: string; file?: string; source?: string }) => post<DownloadTask>('/api/download/start', body),
    tasks: () => get<{ tasks: DownloadTask[] }>('/api/download/tasks'),
    pause: (id: number) => post<DownloadTask>('/api/download/pause', { id }),
    resume: (id: number) => post<DownloadTask>('/api/download/resume', { id }),
    remove: (id: number, deletePartial: boolean) =>
      del<unknown>('/api/download/delete', { id, delete_partial: deletePartial }),
    /** `download.progress` (a task's status) and `model.added` (`/ws/download-progress`). */
    live: (onEvent: (e: EventEnvelope) => void, onState?: (c: boolean) => void) =>
      socket('/ws/download-progress', (d) => d && typeof d === 'object' && onEvent(d as EventEnvelope), { onState }),
  },
  bench: {
    run: (body: { model: string; n_prompt: number; n_gen: number; reps: number; threads?: number; n_gpu_layers?: number }) =>
      post<{ status: string; run: BenchRun }>('/api/bench/run', body),
    results: () => get<{ running: BenchRun | null; runs: BenchStored[] }>('/api/bench/results'),
    remove: (id: number) => del<unknown>(`/api/bench/results/${id}`),
    /** `bench.started`, `bench.progress`, `bench.completed`, `bench.failed` (`/ws/bench`). */
    live: (onEvent: (e: EventEnvelope) => void, onState?: (c: boolean) => void) =>
      socket('/ws/bench', (d) => d && typeof d === 'object' && onEvent(d as EventEnvelope), { onState }),
  },
  config: {
    get: () => get<{ config: Record<string, any>; config_file?: string }>('/api/config'),
    /** Changes keys (`{"server": {"port": 8081}}`); says which need a restart. */
    set: (config: Record<string, unknown>) =>
      put<{ updated: string[]; restart_required: string[] }>('/api/config', { config }),
    modelPaths: () => get<{ paths: string[]; models_dir: string; roots: Array<{ path: string; source: string }> }>('/api/config/model-paths'),
    addModelPath: (path: string) => post<unknown>('/api/config/model-paths', { path }),
    removeModelPath: (path: string) => del<unknown>('/api/config/model-paths', undefined, { path }),
    browse: (path?: string) =>
      get<{ path: string | null; parent?: string | null; entries: Array<{ kind: string; name: string; path: string }> }>('/api/system/fs/browse', { path }),
    ports: () => get<{ ports: Record<string, { configured_port: number; enabled_at_start: boolean; open: boolean; port: number | null; setting: string }> }>('/api/system/ports'),
    openPort: (name: string) => post<unknown>(`/api/system/ports/${enc(name)}/start`),
    closePort: (name: string) => post<unknown>(`/api/system/ports/${enc(name)}/stop`),
  },
  mcp: {
    servers: () => get<{ servers: McpServer[] }>('/api/mcp/servers'),
    add: (name: string, config: unknown) => post<unknown>('/api/mcp/servers', { name, config }),
    /** The server's new entry; masked env/header values keep the stored ones. */
    edit: (name: string, config: unknown) => put<McpServer>(`/api/mcp/servers/${enc(name)}`, config),
    enable: (name: string) => post<unknown>(`/api/mcp/servers/${enc(name)}/enable`),
    disable: (name: string) => post<unknown>(`/api/mcp/servers/${enc(name)}/disable`),
    remove: (name: string) => del<unknown>(`/api/mcp/servers/${enc(name)}`),
    tools: () => get<{ tools: Array<{ name: string; description?: string; source: { type: string; server?: string } }> }>('/api/tools'),
  },
  chat: {
    list: (search?: string, limit = 100) =>
      get<{ sessions: Session[]; total: number }>('/api/chat/sessions', { search, limit }),
    create: (body: { title?: string; model?: string; models?: string[]; params?: SessionParams }) =>
      post<Session>('/api/chat/sessions/create', body),
    patch: (id: string, body: Partial<{ title: string; model: string; models: string[]; params: SessionParams; active_leaf: number }>) =>
      request<Session>('PATCH', `/api/chat/sessions/${enc(id)}`, { body }),
    remove: (id: string) => del<unknown>(`/api/chat/sessions/${enc(id)}`),
    /** Every message of the session (the tree) and its active branch. */
    tree: (id: string) => get<History>(`/api/chat/history/${enc(id)}`, { tree: 1 }),
    branch: (id: string) => get<History>(`/api/chat/history/${enc(id)}`),
    stop: (id: string) => post<{ stopped: number }>(`/api/chat/sessions/${enc(id)}/stop`),
    send: (body: { session_id: string; message: string; models?: string[] }, onEvent: ChatStreamHandler, signal?: AbortSignal) =>
      stream('/api/chat/send', { ...body, stream: true }, onEvent, signal),
    regenerate: (id: string, body: { models?: string[] }, onEvent: ChatStreamHandler, signal?: AbortSignal) =>
      stream(`/api/chat/sessions/${enc(id)}/regenerate`, { ...body, stream: true }, onEvent, signal),
    edit: (id: string, body: { message_id: number; content: string; models?: string[] }, onEvent: ChatStreamHandler, signal?: AbortSignal) =>
      stream(`/api/chat/sessions/${enc(id)}/edit`, { ...body, stream: true }, onEvent, signal),
    export: (id: string, format: 'json' | 'markdown') =>
      request<Response>('GET', `/api/chat/export/${enc(id)}`, { query: { format }, raw: true }),
  },
  /** The event feed (`/ws/events`): `model.*`, `bench.*`, `deployment.*`, ... */
  events: (onEvent: (e: EventEnvelope) => void, onState?: (c: boolean) => void) =>
    socket('/ws/events', (d) => d && typeof d === 'object' && onEvent(d as EventEnvelope), { onState }),
}

export { get, post, put, del, request, stream, socket, withQuery }
export type { Socket } from './client'
