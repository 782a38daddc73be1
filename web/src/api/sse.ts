// Server-Sent Events parsing (the WHATWG rules): fields `event`, `data`, `id`; several `data`
// lines join with "\n"; a blank line ends an event; `:` lines are comments. Chunks may cut a
// line (or a CRLF) anywhere: the parser keeps the unfinished tail for the next chunk.

export interface SseEvent {
  event: string
  data: string
  id?: string
}

export class SseParser {
  private buffer = ''
  private data: string[] = []
  private event = ''
  private id: string | undefined
  private pendingCr = false

  constructor(private readonly onEvent: (e: SseEvent) => void) {}

  /** Feeds decoded text; calls `onEvent` for every event it completes. */
  feed(text: string): void {
    if (this.pendingCr && text.startsWith('\n')) text = text.slice(1)
    this.pendingCr = false
    this.buffer += text
    let start = 0
    for (;;) {
      const cr = this.buffer.indexOf('\r', start)
      const lf = this.buffer.indexOf('\n', start)
      let end: number
      if (cr === -1 && lf === -1) break
      if (cr !== -1 && (lf === -1 || cr < lf)) {
        end = cr
        const line = this.buffer.slice(start, end)
        if (end + 1 === this.buffer.length) {
          // A CR at the very end: the LF of a CRLF may come with the next chunk.
          this.pendingCr = true
          start = end + 1
          this.line(line)
          break
        }
        start = this.buffer[end + 1] === '\n' ? end + 2 : end + 1
        this.line(line)
      } else {
        end = lf
        this.line(this.buffer.slice(start, end))
        start = end + 1
      }
    }
    this.buffer = this.buffer.slice(start)
  }

  /** The stream ended: an event not closed by a blank line is dropped, as the spec says. */
  end(): void {
    this.buffer = ''
    this.data = []
    this.event = ''
  }

  private line(line: string): void {
    if (line === '') {
      if (this.data.length > 0) {
        this.onEvent({ event: this.event || 'message', data: this.data.join('\n'), id: this.id })
      }
      this.data = []
      this.event = ''
      return
    }
    if (line.startsWith(':')) return
    const colon = line.indexOf(':')
    const field = colon === -1 ? line : line.slice(0, colon)
    let value = colon === -1 ? '' : line.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    switch (field) {
      case 'data':
        this.data.push(value)
        break
      case 'event':
        this.event = value
        break
      case 'id':
        this.id = value
        break
    }
  }
}

/** Reads a `ReadableStream` of bytes as SSE, decoding UTF-8 across chunk borders. */
export async function readSse(
  body: ReadableStream<Uint8Array>,
  onEvent: (e: SseEvent) => void,
): Promise<void> {
  const parser = new SseParser(onEvent)
  const decoder = new TextDecoder()
  const reader = body.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    parser.feed(decoder.decode(value, { stream: true }))
  }
  parser.feed(decoder.decode())
  parser.end()
}
