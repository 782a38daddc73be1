import { defineStore } from 'pinia'
import { api, type EventEnvelope, type Socket } from '@/api'
import { useModels } from './models'

type Listener = (e: EventEnvelope) => void
const listeners = new Set<Listener>()
let sock: Socket | null = null

/** The one `/ws/events` connection, shared by every page. */
export const useLive = defineStore('live', {
  state: () => ({ connected: false, last: null as EventEnvelope | null }),
  actions: {
    start() {
      if (sock) return
      const models = useModels()
      sock = api.events(
        (e) => {
          this.last = e
          models.applyEvent(e)
          for (const l of listeners) l(e)
        },
        (c) => (this.connected = c),
      )
    },
    /** Calls `fn` for every event until the returned function is called. */
    on(fn: Listener): () => void {
      listeners.add(fn)
      return () => listeners.delete(fn)
    },
  },
})
