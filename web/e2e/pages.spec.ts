import { test, expect, screenshots } from './util'

test('model details: metadata with large arrays folded, launch parameters, template preview', async ({ page }) => {
  await page.goto('/models/smol')
  await expect(page.getByTestId('details-title')).toHaveText('smol')
  const meta = page.getByTestId('metadata')
  await expect(meta).toContainText('general.architecture')
  // tokenizer.ggml.tokens is an array of thousands: folded, with its length.
  await expect(meta.locator('summary').filter({ hasText: 'tokenizer.ggml.tokens' }).or(meta.locator('tr', { hasText: 'tokenizer.ggml.tokens' }).locator('summary'))).toContainText('[49152]')
  await page.getByTestId('template-preview').click()
  await expect(page.getByTestId('template-preview-text')).toContainText('What is a llama?')
  await screenshots(page, 'model-details')
})

test('settings: a default saved through the API is shown after a reload', async ({ page }) => {
  await page.goto('/settings')
  const temp = page.getByTestId('setting-sampling.temperature')
  await expect(temp).not.toHaveValue('')
  const before = await temp.inputValue()
  await temp.fill('0.55')
  await page.getByTestId('defaults-save').click()
  await expect(page.getByTestId('toast').first()).toBeVisible()
  await page.reload()
  await expect(page.getByTestId('setting-sampling.temperature')).toHaveValue('0.55')
  await page.getByTestId('folder-browse').click()
  await expect(page.getByTestId('folder-browser')).toBeVisible()
  await screenshots(page, 'settings')
  await page.getByTestId('setting-sampling.temperature').fill(before)
  await page.getByTestId('defaults-save').click()
})

test('logs: live lines, level filter, pause and search', async ({ page, request }) => {
  await page.goto('/logs')
  await expect(page.getByTestId('log-lines')).not.toContainText('No log lines yet.')
  await page.getByTestId('log-pause').click()
  await expect(page.getByTestId('log-paused')).toBeVisible()
  // A request made while paused logs a line that waits.
  await request.post('/api/models/scan', { data: {} })
  await page.getByTestId('log-pause').click()
  await expect(page.getByTestId('log-paused')).toHaveCount(0)
  await page.getByTestId('log-search').fill('no line says this 7f3a')
  await expect(page.getByTestId('log-lines')).toContainText('No log lines yet.')
  await page.getByTestId('log-search').fill('')
  await page.getByTestId('log-level').selectOption('warn')
  await screenshots(page, 'logs')
})
