import { test, expect, screenshots } from './util'

test('download: search the local hub, start a download, see it progress, pause it', async ({ page }) => {
  test.skip(!process.env.E2E_HUB && !process.env.CI, 'no test hub binary (crates/testhub)')
  await page.goto('/download')
  await page.getByTestId('hub-search').fill('tiny')
  await page.getByTestId('hub-search-go').click()
  await page.getByTestId('hub-result').filter({ hasText: 'e2e/tiny-GGUF' }).click()
  const file = page.locator('[data-testid="hub-file"][data-file="tiny-Q8_0.gguf"]')
  await expect(file).toContainText('Q8_0')
  await expect(file.locator('.badge')).toBeVisible() // the "fits in memory" hint
  await file.getByTestId('hub-download').click()
  // The hub stops sending this file halfway: the task shows bytes and stays downloading.
  const task = page.getByTestId('download-task').filter({ hasText: 'tiny-Q8_0.gguf' })
  await expect(task).toHaveAttribute('data-state', 'downloading')
  await expect(task.getByTestId('download-bytes')).not.toHaveText(/^0 B/)
  await screenshots(page, 'download')
  await task.getByTestId('download-pause').click()
  await expect(task).toHaveAttribute('data-state', 'paused')
  await expect(task.getByTestId('download-resume')).toBeVisible()
})
