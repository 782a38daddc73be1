import { describe, it, expect } from 'vitest'
import { BadLine, emptyForm, toEntry, toForm } from '@/lib/mcp'

describe('the MCP server form', () => {
  it('shows a stdio entry and gives it back, masked values untouched', () => {
    const shown = { command: 'npx', args: ['-y', 'server-files', '/data'], env: { TOKEN: '********', MODE: '********' }, cwd: '/srv' }
    const form = toForm(shown)
    expect(form).toMatchObject({ transport: 'stdio', command: 'npx', args: '-y\nserver-files\n/data', env: 'TOKEN=********\nMODE=********', cwd: '/srv' })
    form.args += '\n--read-only'
    form.env = 'TOKEN=********\nMODE=fast'
    expect(toEntry(form, shown)).toEqual({
      command: 'npx',
      args: ['-y', 'server-files', '/data', '--read-only'],
      env: { TOKEN: '********', MODE: 'fast' },
      cwd: '/srv',
    })
  })

  it('shows a URL entry with its transport and headers', () => {
    const shown = { url: 'http://127.0.0.1:9/sse', type: 'sse', headers: { Authorization: '********' }, timeout_ms: 5000 }
    const form = toForm(shown)
    expect(form).toMatchObject({ transport: 'sse', url: 'http://127.0.0.1:9/sse', headers: 'Authorization: ********', timeout: '5000' })
    form.transport = 'http'
    form.headers += '\nX-Team: a: b'
    expect(toEntry(form, shown)).toEqual({
      url: 'http://127.0.0.1:9/sse',
      type: 'http',
      headers: { Authorization: '********', 'X-Team': 'a: b' },
      timeout_ms: 5000,
    })
  })

  it('takes the timeout as the number input gives it', () => {
    expect(toEntry({ ...emptyForm(), command: 'srv', timeout: 2500 })).toEqual({ command: 'srv', args: [], timeout_ms: 2500 })
    expect(toEntry({ ...emptyForm(), command: 'srv', timeout: '' })).toEqual({ command: 'srv', args: [] })
  })

  it('keeps a disabled server disabled through an edit', () => {
    const shown = { command: 'srv', args: [], disabled: true }
    expect(toEntry(toForm(shown), shown)).toEqual({ command: 'srv', args: [], disabled: true })
  })

  it('names a line that is not NAME=value', () => {
    const form = { ...emptyForm(), command: 'srv', env: 'A=1\njust words' }
    expect(() => toEntry(form)).toThrow(BadLine)
    try {
      toEntry(form)
    } catch (e) {
      expect(e).toMatchObject({ field: 'env', line: 'just words' })
    }
  })
})
