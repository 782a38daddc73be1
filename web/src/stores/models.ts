import { defineStore } from 'pinia'
import { api, type ModelEntry, type EventEnvelope } from '@/api'

/**
 * The discovered models and their states, shared by every page. Kept current by the event
 * feed (`applyEvent`): a `model.*` event changes the one model, a scan reloads the list.
 */
export const useModels = defineStore('models', {
  state: () => ({
    items: [] as ModelEntry[],
    loaded: false,
    error: null as unknown,
    busy: {} as Record<string, 'load' | 'unload'>,
  }),
  getters: {
    byId: (s) => (id: string) => s.items.find((m) => m.id === id),
    running: (s) => s.items.filter((m) => m.state === 'loaded' || m.state === 'loading'),
  },
  actions: {
    async refresh() {
      try {
        const r = await api.models.list()
        this.items = r.models
        this.error = null
      } catch (e) {
        this.error = e
      } finally {
        this.loaded = true
      }
    },
    async load(id: string, params?: Record<string, unknown>) {
      this.busy[id] = 'load'
      this.patch(id, { state: 'loading', progress: 0, error: undefined })
      try {
        await api.models.load(id, params)
        this.patch(id, { state: 'loaded', progress: undefined })
      } catch (e) {
        await this.refresh()
        throw e
      } finally {
        delete this.busy[id]
      }
    },
    async unload(id: string) {
      this.busy[id] = 'unload'
      try {
        await api.models.unload(id)
        this.patch(id, { state: 'unloaded' })
      } finally {
        delete this.busy[id]
      }
    },
    patch(id: string, fields: Partial<ModelEntry>) {
      const m = this.items.find((x) => x.id === id)
      if (m) Object.assign(m, fields)
    },
    /** One event of `/ws/events`. */
    applyEvent(e: EventEnvelope) {
      const id = typeof e.data?.id === 'string' ? e.data.id : undefined
      switch (e.type) {
        case 'model.loading':
          if (id) this.patch(id, { state: 'loading', progress: num(e.data.progress) ?? 0 })
          break
        case 'model.loaded':
          if (id) this.patch(id, { state: 'loaded', progress: undefined, error: undefined })
          break
        case 'model.unloaded':
          if (id) this.patch(id, { state: 'unloaded', progress: undefined })
          break
        case 'model.failed':
          if (id) this.patch(id, { state: 'failed', error: String(e.data.reason ?? e.data.error ?? '') })
          break
        case 'model.added':
        case 'model.removed':
        case 'models.scanned':
          void this.refresh()
          break
      }
    },
  },
})

function num(v: unknown): number | undefined {
  return typeof v === 'number' ? v : undefined
}
