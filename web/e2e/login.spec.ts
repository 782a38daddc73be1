import { test, expect, screenshots } from './util'
import { serve, type Served } from './server'

// A server of its own, started with keys (and no models): the API answers 401, the prompt
// appears, a wrong key and a key that may not manage are refused in words, the admin key
// works and is kept for the tab (sessionStorage) across a reload, never in localStorage.
let server: Served
test.beforeAll(async () => {
  server = await serve({}, ['--api-key', 'inference-key-1', '--admin-api-key', 'admin-key-1'])
})
test.afterAll(async () => server?.stop())

test('login: the key prompt refuses wrong keys in words and keeps the right one for the session', async ({ page }) => {
  const api = await page.request.get(`${server.base}/api/models`)
  expect(api.status()).toBe(401)

  await page.goto(`${server.base}/`)
  const dialog = page.getByRole('dialog', { name: 'API key needed' })
  await expect(dialog).toBeVisible()
  await expect(page.getByTestId('api-key')).toBeFocused()
  await screenshots(page, 'login')

  await page.getByTestId('api-key').fill('not-the-key')
  await page.getByTestId('api-key').press('Enter')
  await expect(page.getByTestId('login-problem')).toContainText('This key was refused')
  await expect(dialog).toBeVisible()

  await page.getByTestId('api-key').fill('inference-key-1')
  await page.getByTestId('login-submit').click()
  await expect(page.getByTestId('login-problem')).toContainText('the dashboard needs the admin key')

  await page.getByTestId('api-key').fill('admin-key-1')
  await page.getByTestId('login-submit').click()
  await expect(dialog).toHaveCount(0)
  await expect(page.getByRole('heading', { name: 'Dashboard' })).toBeVisible()
  await expect(page.getByTestId('live-state')).toHaveText('Live')

  // No models in this server's folder: the card says where to get some.
  const none = page.getByTestId('quick-none')
  await expect(none).toContainText('No models found')
  await expect(none.getByRole('link', { name: 'Download models' })).toHaveAttribute('href', '/download')
  await expect(none.getByRole('link', { name: 'Models', exact: true })).toHaveAttribute('href', '/models')

  // Kept for this tab: a reload needs no prompt; nothing of it in localStorage.
  await page.reload()
  await expect(page.getByRole('heading', { name: 'Dashboard' })).toBeVisible()
  await expect(page.getByTestId('live-state')).toHaveText('Live')
  await expect(dialog).toHaveCount(0)
  const stored = await page.evaluate(() => ({
    session: Object.values({ ...sessionStorage }),
    local: Object.values({ ...localStorage }),
  }))
  expect(stored.session).toContain('admin-key-1')
  expect(stored.local.join(' ')).not.toContain('key-1')
})
