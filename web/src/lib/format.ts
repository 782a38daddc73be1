// Numbers for people: bytes, durations, rates (locale-aware where it matters).

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–'
  const units = ['B', 'KB', 'MB', 'GB', 'TB']
  let v = n
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${v >= 100 || i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`
}

export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '–'
  const s = Math.max(0, Math.round(seconds))
  const d = Math.floor(s / 86400)
  const h = Math.floor((s % 86400) / 3600)
  const m = Math.floor((s % 3600) / 60)
  if (d) return `${d}d ${h}h`
  if (h) return `${h}h ${m}m`
  if (m) return `${m}m ${s % 60}s`
  return `${s}s`
}

export function rate(n: number | null | undefined, digits = 1): string {
  if (n === null || n === undefined || !Number.isFinite(n) || n === 0) return '–'
  return n.toFixed(digits)
}

export function percent(part: number, whole: number): number {
  return whole > 0 ? Math.min(100, Math.max(0, (part / whole) * 100)) : 0
}

/** A model's memory as one number of bytes (the engine reports parts). */
export function modelMemory(m: unknown): number | null {
  if (typeof m === 'number') return m
  if (m && typeof m === 'object') {
    const o = m as Record<string, unknown>
    if (typeof o.total === 'number') return o.total
    let sum = 0
    let any = false
    for (const v of Object.values(o)) {
      if (typeof v === 'number') {
        sum += v
        any = true
      }
    }
    return any ? sum : null
  }
  return null
}
