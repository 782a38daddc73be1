import { describe, it, expect } from 'vitest'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import en from '@/locales/en'
import zh from '@/locales/zh'
import { pickLanguage } from '@/i18n'

function keys(o: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(o).flatMap(([k, v]) =>
    v && typeof v === 'object' ? keys(v as Record<string, unknown>, `${prefix}${k}.`) : [`${prefix}${k}`],
  )
}

describe('translations', () => {
  it('has every English string in Chinese and nothing more', () => {
    expect(keys(zh).sort()).toEqual(keys(en).sort())
  })

  it('uses the same placeholders in both languages', () => {
    const get = (o: unknown, k: string) => k.split('.').reduce((x: any, p) => x?.[p], o) as string
    for (const k of keys(en)) {
      const ph = (s: string) => (s.match(/\{\w+\}/g) ?? []).sort()
      expect(ph(get(zh, k)), k).toEqual(ph(get(en, k)))
    }
  })

  it('has every key the code names', () => {
    const files = (dir: string): string[] =>
      readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? files(join(dir, f)) : /\.(vue|ts)$/.test(f) ? [join(dir, f)] : []))
    const known = new Set(keys(en))
    const missing: string[] = []
    for (const file of files(resolve(process.cwd(), 'src'))) {
      const text = readFileSync(file, 'utf8')
      for (const m of text.matchAll(/\$?\bt\('([a-zA-Z]+\.[a-zA-Z.]+)'/g)) if (!known.has(m[1])) missing.push(`${file}: ${m[1]}`)
    }
    expect(missing).toEqual([])
  })

  it('picks ?lang= over the stored choice over the browser', () => {
    expect(pickLanguage('?lang=zh', 'en', ['en-US'])).toBe('zh')
    expect(pickLanguage('', 'en', ['zh-CN'])).toBe('en')
    expect(pickLanguage('', null, ['zh-TW', 'en'])).toBe('zh')
    expect(pickLanguage('', null, ['fr-FR', 'en-GB'])).toBe('en')
    expect(pickLanguage('?lang=xx', null, ['fr'])).toBe('en')
  })
})

describe('pages', () => {
  it('are the paths the server answers with the page (crates/server/src/pages.rs)', async () => {
    const rust = readFileSync(resolve(process.cwd(), '../crates/server/src/pages.rs'), 'utf8')
    const list = rust.match(/pub const PAGES: &\[&str\] = &\[([\s\S]*?)\];/)![1]
    const server = [...list.matchAll(/"([^"]+)"/g)].map((m) => m[1]).sort()
    const { routes } = await import('@/router')
    const client = routes.map((r) => r.path).filter((p) => !p.includes(':')).sort()
    expect(client).toEqual(server)
  })
})
