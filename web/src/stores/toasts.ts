import { defineStore } from 'pinia'
import { ApiError } from '@/api/client'

export interface Toast {
  id: number
  kind: 'error' | 'info' | 'success'
  text: string
}

let next = 1

/** Messages shown in the corner: every API error a page does not show inline ends up here. */
export const useToasts = defineStore('toasts', {
  state: () => ({ items: [] as Toast[] }),
  actions: {
    push(kind: Toast['kind'], text: string, ms = kind === 'error' ? 8000 : 3500): number {
      const id = next++
      this.items.push({ id, kind, text })
      if (ms > 0) setTimeout(() => this.dismiss(id), ms)
      return id
    },
    error(e: unknown): void {
      this.push('error', describe(e))
    },
    dismiss(id: number): void {
      this.items = this.items.filter((t) => t.id !== id)
    },
  },
})

/** Any thrown value as a sentence. */
export function describe(e: unknown): string {
  if (e instanceof ApiError) return e.message
  if (e instanceof Error) return e.message
  return String(e)
}
