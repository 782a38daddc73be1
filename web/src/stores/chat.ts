import { defineStore } from 'pinia'
import { api, type ChatMessage, type Session, type SessionParams } from '@/api'

/**
 * The chat page's state: the sessions, the open session's whole message tree and which leaf
 * is shown. The shown branch is the path from `activeLeaf` up to the root, so a stream
 * extends it as its messages arrive and switching branches is choosing another leaf.
 */
export const useChat = defineStore('chat', {
  state: () => ({
    sessions: [] as Session[],
    search: '',
    listError: null as unknown,
    session: null as Session | null,
    messages: {} as Record<number, ChatMessage>,
    activeLeaf: null as number | null,
    streaming: false,
    error: null as unknown,
    /** A second model answering every question beside the first (compare). */
    compareWith: '' as string,
    controller: null as AbortController | null,
  }),
  getters: {
    /** The shown conversation, root first. */
    branch(s): ChatMessage[] {
      const out: ChatMessage[] = []
      let id = s.activeLeaf
      const seen = new Set<number>()
      while (id !== null && id !== undefined && s.messages[id] && !seen.has(id)) {
        seen.add(id)
        out.push(s.messages[id])
        id = s.messages[id].parent_id
      }
      return out.reverse()
    },
    /** Messages with the same parent and role as `m` (its alternatives), oldest first. */
    siblings(s) {
      return (m: ChatMessage) =>
        Object.values(s.messages)
          .filter((x) => x.parent_id === m.parent_id && x.role === m.role)
          .sort((a, b) => a.id - b.id)
    },
    /** The answers to question `q`, oldest first (several when models were compared). */
    answers(s) {
      return (q: ChatMessage) =>
        Object.values(s.messages)
          .filter((x) => x.parent_id === q.id && x.role === 'assistant')
          .sort((a, b) => a.id - b.id)
    },
    models(s): string[] {
      const first = s.session?.models[0]
      return [first, s.compareWith].filter((m): m is string => !!m)
    },
  },
  actions: {
    async listSessions() {
      try {
        this.sessions = (await api.chat.list(this.search || undefined)).sessions
        this.listError = null
      } catch (e) {
        this.listError = e
      }
    },
    async open(id: string) {
      const h = await api.chat.tree(id)
      this.session = h.session
      this.messages = Object.fromEntries(h.messages.map((m) => [m.id, m]))
      this.activeLeaf = h.session.active_leaf ?? h.branch[h.branch.length - 1] ?? null
      this.error = null
    },
    close() {
      this.session = null
      this.messages = {}
      this.activeLeaf = null
    },
    async create(model?: string, params?: SessionParams) {
      const s = await api.chat.create({ model, params })
      this.sessions.unshift(s)
      this.session = s
      this.messages = {}
      this.activeLeaf = null
      return s
    },
    async rename(id: string, title: string) {
      const s = await api.chat.patch(id, { title })
      this.replaceSession(s)
    },
    async remove(id: string) {
      await api.chat.remove(id)
      this.sessions = this.sessions.filter((s) => s.id !== id)
      if (this.session?.id === id) this.close()
    },
    async setParams(params: SessionParams) {
      if (!this.session) return
      this.replaceSession(await api.chat.patch(this.session.id, { params }))
    },
    /** Server tools (MCP and built-ins) on or off for this conversation's answers. */
    async setTools(on: boolean) {
      if (!this.session) return
      this.replaceSession(await api.chat.patch(this.session.id, { params: { ...this.session.params, server_tools: on } }))
    },
    async setModel(model: string) {
      if (!this.session) return
      this.replaceSession(await api.chat.patch(this.session.id, { model }))
    },
    replaceSession(s: Session) {
      if (this.session?.id === s.id) this.session = s
      const i = this.sessions.findIndex((x) => x.id === s.id)
      if (i >= 0) this.sessions[i] = s
    },
    /** Shows the branch through `m`: its newest descendant becomes the leaf. */
    async switchTo(m: ChatMessage) {
      if (!this.session || this.streaming) return
      let leaf = m
      for (;;) {
        const kids = Object.values(this.messages).filter((x) => x.parent_id === leaf.id)
        if (!kids.length) break
        leaf = kids.reduce((a, b) => (b.id > a.id ? b : a))
      }
      this.activeLeaf = leaf.id
      await api.chat.patch(this.session.id, { active_leaf: leaf.id })
    },
    async send(text: string) {
      const s = this.session
      if (!s) return
      await this.run((on, signal) => api.chat.send({ session_id: s.id, message: text, models: this.models }, on, signal))
    },
    async regenerate() {
      const s = this.session
      if (!s) return
      await this.run((on, signal) => api.chat.regenerate(s.id, { models: this.models }, on, signal))
    },
    async edit(messageId: number, text: string) {
      const s = this.session
      if (!s) return
      await this.run((on, signal) => api.chat.edit(s.id, { message_id: messageId, content: text, models: this.models }, on, signal))
    },
    /** Stops the running answers; their text so far is kept (the server stores it). */
    async stop() {
      if (!this.session) return
      await api.chat.stop(this.session.id)
    },
    async run(go: (on: (ev: string, data: unknown) => void, signal: AbortSignal) => Promise<void>) {
      const id = this.session?.id
      if (!id || this.streaming) return
      this.streaming = true
      this.error = null
      const controller = new AbortController()
      this.controller = controller
      try {
        await go((ev, data) => this.apply(ev, data), controller.signal)
      } catch (e) {
        if (!(e instanceof DOMException && e.name === 'AbortError')) this.error = e
      } finally {
        this.streaming = false
        this.controller = null
        for (const m of Object.values(this.messages)) m.streaming = false
      }
      // The stored state is the truth (titles, tokens, branches).
      if (this.session?.id === id) {
        await this.open(id).catch((e) => (this.error = e))
        void this.listSessions()
      }
    },
    /** One event of a send/regenerate/edit stream. */
    apply(event: string, data: unknown) {
      const d = (data ?? {}) as Record<string, any>
      const type = typeof d.type === 'string' ? d.type : event
      const id = typeof d.message_id === 'number' ? d.message_id : undefined
      switch (type) {
        case 'message': {
          const m = d.message as ChatMessage | undefined
          if (!m) return
          const first = m.role === 'assistant' && Object.values(this.messages).every((x) => x.parent_id !== m.parent_id || x.role !== 'assistant' || !x.streaming)
          this.messages[m.id] = { ...m, streaming: m.role === 'assistant' }
          // The branch follows the question, then the first answer to it.
          if (m.role !== 'assistant' || first) this.activeLeaf = m.id
          return
        }
        case 'delta':
          if (id !== undefined && this.messages[id]) this.messages[id].content += String(d.content ?? '')
          return
        case 'reasoning':
          if (id !== undefined && this.messages[id]) this.messages[id].reasoning = (this.messages[id].reasoning ?? '') + String(d.reasoning ?? '')
          return
        case 'done': {
          const m = d.message as ChatMessage | undefined
          if (m) this.messages[m.id] = { ...this.messages[m.id], ...m, streaming: false }
          return
        }
        case 'error': {
          const msg = typeof d.error === 'string' ? d.error : (d.error?.message ?? 'error')
          if (id !== undefined && this.messages[id]) {
            this.messages[id].error = msg
            this.messages[id].streaming = false
          } else this.error = new Error(msg)
          return
        }
        case 'tool_call': {
          // A server tool the answer calls (issue 14): shown inline on the answer.
          const call = d.server_tool_call as { id?: string; name?: string; arguments?: string } | undefined
          if (id !== undefined && this.messages[id] && call) {
            ;(this.messages[id].tool_calls ??= []).push({ id: call.id ?? '', name: call.name ?? '', arguments: call.arguments ?? '' })
          }
          return
        }
        case 'tool_result': {
          // The result is a `tool` message under the answer that called it; the answer
          // that reads it comes next, under it.
          const m = d.message as ChatMessage | undefined
          if (m) {
            this.messages[m.id] = m
            this.activeLeaf = m.id
          }
          return
        }
      }
    },
  },
})
