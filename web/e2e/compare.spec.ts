import { test, expect, screenshots } from './util'
import type { Page } from '@playwright/test'

// Compare mode: one question, two models (SmolLM2 and Gemma 3 270M) answering side by side.
const MODEL_2 = process.env.E2E_MODEL_2

/** Records, per answer, the lengths its text had while it was streaming. */
async function watchStreams(page: Page) {
  await page.evaluate(() => {
    const seen: Record<string, number[]> = {}
    ;(window as any).__streams = seen
    new MutationObserver(() => {
      for (const el of document.querySelectorAll<HTMLElement>('[data-testid="msg-assistant"].streaming')) {
        const id = el.dataset.id ?? ''
        const n = el.querySelector('[data-testid="answer"]')?.textContent?.length ?? 0
        const list = (seen[id] ??= [])
        if (n > 0 && list[list.length - 1] !== n) list.push(n)
      }
    }).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true })
  })
}

test('compare: two models answer the same question side by side, both streamed, each with tokens/s', async ({ page }) => {
  test.skip(!MODEL_2 && !process.env.CI, 'LLAMA_DASHBOARD_TEST_MODEL_2 is not set')
  await page.goto('/chat?model=smol')
  await expect(page.getByTestId('chat-model')).toHaveValue('smol')
  await page.getByTestId('params-toggle').click()
  await page.getByTestId('param-max-tokens').fill('48')
  await page.getByTestId('params-save').click()
  await page.getByTestId('params-toggle').click()
  await page.getByTestId('chat-compare').selectOption(MODEL_2!)

  await watchStreams(page)
  await page.getByTestId('composer').fill('Name three animals that live on farms.')
  await page.getByTestId('composer').press('Enter')
  const pair = page.locator('.row-msg.compare')
  await expect(pair).toHaveCount(1)
  await expect(page.getByTestId('send')).toBeVisible()

  const both = pair.getByTestId('msg-assistant')
  await expect(both).toHaveCount(2)
  await expect(both.nth(0)).toContainText('smol')
  await expect(both.nth(1)).toContainText(MODEL_2!)
  for (let i = 0; i < 2; i++) {
    await expect(both.nth(i).getByTestId('answer')).not.toHaveText('')
    await expect(both.nth(i).getByTestId('answer-speed')).toContainText('/s')
    await expect(both.nth(i).getByTestId('answer-tokens')).toBeVisible()
  }
  // Each answer's text grew on the page while it streamed (not only at the end).
  const ids = await both.evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.id ?? ''))
  const streams = await page.evaluate(() => (window as any).__streams as Record<string, number[]>)
  for (const id of ids) expect(streams[id]?.length ?? 0, `answer ${id} streamed`).toBeGreaterThan(1)
  await screenshots(page, 'chat-compare')
})
