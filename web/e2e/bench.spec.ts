import { test, expect, screenshots } from './util'

test('benchmark: a short run shows its progress, lands in the history and on the chart', async ({ page }) => {
  await page.goto('/bench')
  await expect(page.getByTestId('bench-model')).toHaveValue('smol')
  const before = await page.getByTestId('bench-row').count()
  await page.getByTestId('bench-pp').fill('16')
  await page.getByTestId('bench-tg').fill('4')
  await page.getByTestId('bench-reps').fill('1')
  await page.getByTestId('bench-run').click()
  await expect(page.getByTestId('bench-running')).toBeVisible()
  await expect(page.getByTestId('bench-row')).toHaveCount(before + 1, { timeout: 120_000 })
  await expect(page.getByTestId('bench-running')).toHaveCount(0)
  await expect(page.getByTestId('bench-chart')).toBeVisible()
  await expect(page.getByTestId('bench-bar')).toHaveCount(2 * (before + 1))
  await screenshots(page, 'bench')
})
