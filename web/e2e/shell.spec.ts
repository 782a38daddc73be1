import { test, expect, screenshots } from './util'

test('the dashboard loads a model and shows it live', async ({ page }) => {
  await page.goto('/')
  await expect(page.getByRole('heading', { name: 'Dashboard' })).toBeVisible()
  await expect(page.getByTestId('live-state')).toHaveText('Live')
  const quick = page.getByTestId('quick-model').filter({ hasText: 'smol' })
  await quick.getByTestId('quick-load').click()
  const loaded = page.getByTestId('loaded-model').filter({ hasText: 'smol' })
  await expect(loaded.getByTestId('model-state')).toHaveAttribute('data-state', 'loaded')
  await screenshots(page, 'dashboard')
  await expect(page.getByTestId('quick-all-loaded')).toHaveCount(0)
  // Every model loaded: the Available models card says so instead of staying empty.
  const second = process.env.E2E_MODEL_2
  if (second) {
    await page.getByTestId('quick-model').filter({ hasText: second }).getByTestId('quick-load').click()
    await expect(page.getByTestId('loaded-model').filter({ hasText: second }).getByTestId('model-state')).toHaveAttribute('data-state', 'loaded')
  }
  await expect(page.getByTestId('quick-all-loaded')).toContainText('Every model is loaded')
  await expect(page.getByTestId('quick-model')).toHaveCount(0)
  const cards = page.getByTestId('loaded-model')
  for (let n = await cards.count(); n > 0; n--) {
    await cards.first().getByTestId('unload').click()
    await expect(cards).toHaveCount(n - 1)
  }
  await expect(page.getByTestId('none-loaded')).toBeVisible()
  await expect(page.getByTestId('quick-all-loaded')).toHaveCount(0)
})

test('language and theme switch and stay switched after a reload', async ({ page }) => {
  await page.goto('/')
  await expect(page.getByRole('heading', { name: 'Dashboard' })).toBeVisible()
  await page.getByTestId('lang-select').selectOption('zh')
  await expect(page.getByRole('heading', { name: '概览' })).toBeVisible()
  await expect(page.locator('html')).toHaveAttribute('lang', 'zh-CN')
  await page.getByTestId('theme-toggle').click()
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark')
  await page.reload()
  await expect(page.getByRole('heading', { name: '概览' })).toBeVisible()
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark')
  await screenshots(page, 'dashboard-zh')
  // ?lang= wins over the stored choice.
  await page.goto('/?lang=en')
  await expect(page.getByRole('heading', { name: 'Dashboard' })).toBeVisible()
})

test('a phone-width page folds the navigation behind a menu button', async ({ page }) => {
  await page.setViewportSize({ width: 390, height: 844 })
  await page.goto('/')
  await expect(page.getByTestId('nav-dashboard')).not.toBeInViewport()
  await page.getByTestId('menu').click()
  await expect(page.getByTestId('nav-dashboard')).toBeInViewport()
})

test('an unknown API path stays JSON while a page path is the app', async ({ page, request }) => {
  const api = await request.get('/api/nope', { headers: { Accept: 'text/html' } })
  expect(api.status()).toBe(404)
  expect(api.headers()['content-type']).toContain('application/json')
  const resp = await page.goto('/models')
  expect(resp?.headers()['content-type']).toContain('text/html')
})
