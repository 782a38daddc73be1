import { test as base, expect, type Page } from '@playwright/test'
import { resolve } from 'node:path'

export const SHOTS = resolve(process.cwd(), '../target/ui-screenshots')

/** Every test starts on the server global-setup started, in English, light theme. */
export const test = base.extend({
  baseURL: async ({}, use) => use(process.env.E2E_BASE_URL),
  page: async ({ page, request }, use) => {
    // No model loaded and no conversation at the start: each test sees the same server state.
    const list = await (await request.get('/api/models')).json()
    for (const m of list.models) {
      if (m.state === 'loaded') await request.post(`/api/models/${encodeURIComponent(m.id)}/unload`, { data: {} })
    }
    for (let page = 0; page < 50; page++) {
      const r = await request.get('/api/chat/sessions', { params: { limit: 100 } })
      const { sessions } = await r.json()
      if (!r.ok() || !sessions?.length) break
      for (const s of sessions) await request.delete(`/api/chat/sessions/${encodeURIComponent(s.id)}`)
    }
    await page.addInitScript(() => {
      if (!sessionStorage.getItem('e2e.init')) {
        sessionStorage.setItem('e2e.init', '1')
        localStorage.setItem('ld.lang', 'en')
        localStorage.setItem('ld.theme', 'light')
      }
    })
    await use(page)
  },
})
export { expect }

const SIZES = { desktop: { width: 1366, height: 860 }, phone: { width: 390, height: 844 } }

/**
 * Screenshots of the page as it is at desktop and phone width, light and dark, into
 * target/ui-screenshots/<name>-<size>-<theme>.png.
 */
export async function screenshots(page: Page, name: string, ready?: (page: Page) => Promise<void>) {
  for (const theme of ['light', 'dark'] as const) {
    await page.evaluate((t) => {
      localStorage.setItem('ld.theme', t)
      document.documentElement.dataset.theme = t
    }, theme)
    for (const [size, vp] of Object.entries(SIZES)) {
      await page.setViewportSize(vp)
      if (ready) await ready(page)
      await page.waitForTimeout(150) // let the layout settle after the resize (not a test condition)
      await page.screenshot({ path: `${SHOTS}/${name}-${size}-${theme}.png`, fullPage: size === 'phone' })
    }
  }
  await page.evaluate(() => {
    localStorage.setItem('ld.theme', 'light')
    document.documentElement.dataset.theme = 'light'
  })
  await page.setViewportSize(SIZES.desktop)
}
