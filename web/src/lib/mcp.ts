// An MCP server's `mcpServers` entry as the Settings form shows it, and back. The server masks
// `env` and `headers` values when it shows an entry; sent back unchanged, a masked value keeps
// the stored one (service::Tools::put), so the form passes them through as they are.

export type Transport = 'stdio' | 'http' | 'sse'

export interface McpForm {
  transport: Transport
  command: string
  /** One argument per line. */
  args: string
  /** `NAME=value`, one per line. */
  env: string
  cwd: string
  url: string
  /** `Name: value`, one per line. */
  headers: string
  /** Milliseconds, empty for the server's default (a number input's v-model gives a number). */
  timeout: string | number
}

export const emptyForm = (): McpForm => ({
  transport: 'stdio',
  command: '',
  args: '',
  env: '',
  cwd: '',
  url: '',
  headers: '',
  timeout: '',
})

type Entry = Record<string, unknown>

const lines = (text: string) =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)

function pairs(map: unknown, sep: string): string {
  if (!map || typeof map !== 'object') return ''
  return Object.entries(map as Record<string, unknown>)
    .map(([k, v]) => `${k}${sep}${String(v)}`)
    .join('\n')
}

/** A line of the env or headers box that is not `NAME=value` / `Name: value`. */
export class BadLine extends Error {
  constructor(
    readonly field: 'env' | 'headers',
    readonly line: string,
  ) {
    super(`${field}: ${line}`)
  }
}

/** Parses `NAME<sep>value` lines; a line without the separator is a [`BadLine`]. */
function parsePairs(text: string, sep: string, field: 'env' | 'headers'): Record<string, string> {
  const out: Record<string, string> = {}
  for (const l of lines(text)) {
    const i = l.indexOf(sep)
    if (i <= 0) throw new BadLine(field, l)
    out[l.slice(0, i).trim()] = l.slice(i + sep.length).trim()
  }
  return out
}

/**
 * The form for a shown entry (values masked by the server stay masked). The server shows
 * entries in one spelling (`url` + `type`, `timeout_ms`: tools' `ServerConfig::to_entry`);
 * the other spellings it accepts are its parser's business, not the form's.
 */
export function toForm(entry: unknown): McpForm {
  const e = (entry && typeof entry === 'object' ? entry : {}) as Entry
  const url = typeof e.url === 'string' ? e.url : ''
  const transport: Transport = url ? (e.type === 'sse' ? 'sse' : 'http') : 'stdio'
  const timeout = e.timeout_ms
  return {
    transport,
    command: typeof e.command === 'string' ? e.command : '',
    args: Array.isArray(e.args) ? e.args.map(String).join('\n') : '',
    env: pairs(e.env, '='),
    cwd: typeof e.cwd === 'string' ? e.cwd : '',
    url,
    headers: pairs(e.headers, ': '),
    timeout: typeof timeout === 'number' ? String(timeout) : '',
  }
}

/**
 * The entry the form describes. `previous` (the entry being edited) keeps what the form does
 * not show (`disabled`: an edit does not turn a server on). Throws [`BadLine`] for a line
 * that is not `NAME=value` / `Name: value`.
 */
export function toEntry(form: McpForm, previous?: unknown): Entry {
  const out: Entry = {}
  if (form.transport === 'stdio') {
    out.command = form.command.trim()
    out.args = lines(form.args)
    const env = parsePairs(form.env, '=', 'env')
    if (Object.keys(env).length) out.env = env
    if (form.cwd.trim()) out.cwd = form.cwd.trim()
  } else {
    out.url = form.url.trim()
    out.type = form.transport
    const headers = parsePairs(form.headers, ':', 'headers')
    if (Object.keys(headers).length) out.headers = headers
  }
  const timeout = String(form.timeout ?? '').trim()
  if (timeout) out.timeout_ms = Number(timeout)
  const prev = previous && typeof previous === 'object' ? (previous as Entry) : {}
  if (prev.disabled === true) out.disabled = true
  return out
}
