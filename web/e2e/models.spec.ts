import { test, expect, screenshots } from './util'

test('load a model from the Models page after its memory estimate, then unload it', async ({ page }) => {
  await page.goto('/models')
  const card = page.getByTestId('model-card').filter({ hasText: 'smol' })
  await expect(card).toBeVisible()
  await screenshots(page, 'models')
  await card.getByTestId('load').click()
  const dialog = page.getByTestId('load-dialog')
  await expect(dialog.getByTestId('estimate')).toBeVisible()
  await screenshots(page, 'models-load-dialog')
  await dialog.getByTestId('load-confirm').click()
  await expect(card.getByTestId('model-state')).toHaveAttribute('data-state', 'loaded')
  // The table view shows the same state.
  await page.getByTestId('view-table').click()
  const row = page.getByTestId('model-row').filter({ hasText: 'smol' })
  await expect(row.getByTestId('model-state')).toHaveAttribute('data-state', 'loaded')
  await screenshots(page, 'models-table')
  await row.getByTestId('unload').click()
  await expect(row.getByTestId('model-state')).toHaveAttribute('data-state', 'unloaded')
  await page.getByTestId('view-cards').click()
  // Search filters the list.
  await page.getByTestId('model-search').fill('no-such-model')
  await expect(page.getByTestId('model-card')).toHaveCount(0)
})
