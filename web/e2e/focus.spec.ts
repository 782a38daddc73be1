import { test, expect } from './util'
import { everyStopHasARing } from './keys'

// Every control a keyboard reaches shows where the focus is, on every page, in both themes.
const PAGES = ['/', '/models', '/models/smol', '/chat?model=smol', '/download', '/bench', '/settings', '/logs']

for (const theme of ['light', 'dark'] as const) {
  test(`every control shows a focus ring (${theme} theme)`, async ({ page }) => {
    for (const path of PAGES) {
      await page.goto(path)
      await page.evaluate((t) => {
        localStorage.setItem('ld.theme', t)
        document.documentElement.dataset.theme = t
      }, theme)
      await expect(page.locator('main h1, main select').first()).toBeVisible()
      expect(await everyStopHasARing(page, 45), path).toBeGreaterThan(10)
    }
  })
}
