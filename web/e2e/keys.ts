import { expect, type Locator, type Page } from '@playwright/test'

/** Whether the focused element shows a focus ring (an outline or a box-shadow). */
export async function focusRing(page: Page): Promise<{ tag: string; text: string; ring: boolean } | null> {
  return page.evaluate(() => {
    const el = document.activeElement as HTMLElement | null
    if (!el || el === document.body) return null
    const s = getComputedStyle(el)
    const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0
    const shadow = !!s.boxShadow && s.boxShadow !== 'none'
    const text = (el.getAttribute('aria-label') || el.getAttribute('data-testid') || el.textContent || '').trim().slice(0, 40)
    return { tag: el.tagName.toLowerCase(), text, ring: outline || shadow }
  })
}

/**
 * Presses Tab (Shift+Tab with `back`) until `target` has the focus — proof that it is
 * reachable by keyboard — checking that every element on the way shows a focus ring.
 */
export async function tabTo(page: Page, target: Locator, opts: { back?: boolean; max?: number } = {}): Promise<void> {
  const key = opts.back ? 'Shift+Tab' : 'Tab'
  for (let i = 0; i < (opts.max ?? 150); i++) {
    if (await target.evaluate((el) => el === document.activeElement).catch(() => false)) return
    await page.keyboard.press(key)
    const f = await focusRing(page)
    if (f) expect(f.ring, `focus ring on <${f.tag}> "${f.text}"`).toBe(true)
  }
  throw new Error(`${target} was not reached with ${key}`)
}

/** Tabs through `stops` elements of the page, each of which must show a focus ring. */
export async function everyStopHasARing(page: Page, stops: number): Promise<number> {
  let seen = 0
  for (let i = 0; i < stops; i++) {
    await page.keyboard.press('Tab')
    const f = await focusRing(page)
    if (!f) continue
    seen++
    expect(f.ring, `focus ring on <${f.tag}> "${f.text}"`).toBe(true)
  }
  return seen
}
