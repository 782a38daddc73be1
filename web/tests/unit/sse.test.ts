import { describe, it, expect } from 'vitest'
import { SseParser, readSse, type SseEvent } from '@/api/sse'

function parse(chunks: string[]): SseEvent[] {
  const out: SseEvent[] = []
  const p = new SseParser((e) => out.push(e))
  for (const c of chunks) p.feed(c)
  return out
}

const STREAM = 'event: delta\ndata: {"a":1}\n\n: comment\ndata: line one\ndata: line two\nid: 7\n\ndata: [DONE]\n\n'

describe('SseParser', () => {
  it('reads events, multi-line data, comments and ids', () => {
    expect(parse([STREAM])).toEqual([
      { event: 'delta', data: '{"a":1}', id: undefined },
      { event: 'message', data: 'line one\nline two', id: '7' },
      { event: 'message', data: '[DONE]', id: '7' },
    ])
  })

  it('gives the same events however the stream is cut', () => {
    const whole = parse([STREAM])
    for (let size = 1; size < STREAM.length; size++) {
      const chunks: string[] = []
      for (let i = 0; i < STREAM.length; i += size) chunks.push(STREAM.slice(i, i + size))
      expect(parse(chunks)).toEqual(whole)
    }
  })

  it('takes CRLF and CR line ends, even with CRLF split across chunks', () => {
    const crlf = STREAM.replace(/\n/g, '\r\n')
    expect(parse([crlf])).toEqual(parse([STREAM]))
    for (let i = 1; i < crlf.length; i++) {
      expect(parse([crlf.slice(0, i), crlf.slice(i)])).toEqual(parse([STREAM]))
    }
    expect(parse(['data: x\r\rdata: y\r\r'])).toEqual([
      { event: 'message', data: 'x', id: undefined },
      { event: 'message', data: 'y', id: undefined },
    ])
  })

  it('drops an event the stream ends in the middle of', () => {
    const out: SseEvent[] = []
    const p = new SseParser((e) => out.push(e))
    p.feed('data: whole\n\ndata: cut')
    p.end()
    expect(out.map((e) => e.data)).toEqual(['whole'])
  })

  it('keeps a space-less field value and ignores unknown fields', () => {
    expect(parse(['data:x\nretry: 10\nfoo: bar\n\n'])).toEqual([{ event: 'message', data: 'x', id: undefined }])
  })
})

describe('readSse', () => {
  it('decodes UTF-8 characters split between chunks', async () => {
    const bytes = new TextEncoder().encode('data: 你好, 🦙\n\n')
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (const b of bytes) c.enqueue(new Uint8Array([b]))
        c.close()
      },
    })
    const out: SseEvent[] = []
    await readSse(stream, (e) => out.push(e))
    expect(out.map((e) => e.data)).toEqual(['你好, 🦙'])
  })
})
