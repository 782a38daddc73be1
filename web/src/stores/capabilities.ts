import { defineStore } from 'pinia'
import { api } from '@/api'

/** Each model's effective capabilities, asked for once per model and kept. */
export const useCapabilities = defineStore('capabilities', {
  state: () => ({ byId: {} as Record<string, string[]>, asked: {} as Record<string, boolean> }),
  actions: {
    async ensure(ids: string[]) {
      const todo = ids.filter((id) => !this.asked[id])
      for (const id of todo) this.asked[id] = true
      // A few at a time: the server reads each GGUF header once and caches it.
      for (let i = 0; i < todo.length; i += 4) {
        await Promise.all(
          todo.slice(i, i + 4).map(async (id) => {
            try {
              this.byId[id] = (await api.models.capabilities(id)).effective
            } catch {
              this.byId[id] = []
            }
          }),
        )
      }
    },
  },
})
