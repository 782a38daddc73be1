import { test, expect } from './util'
import { tabTo } from './keys'
import type { Page } from '@playwright/test'

// The chat driven from the keyboard alone: no click, every control reached with Tab (each
// stop on the way must show a focus ring), the page's own keys for the rest.
const answers = (page: Page) => page.getByTestId('msg-assistant')
const finished = (page: Page) => expect(page.getByTestId('send')).toBeVisible()
const focused = (page: Page, testId: string) => expect(page.getByTestId(testId)).toBeFocused()

async function setMaxTokens(page: Page, n: number) {
  if (!(await page.getByTestId('params').isVisible())) {
    await tabTo(page, page.getByTestId('params-toggle'))
    await page.keyboard.press('Enter')
  }
  await tabTo(page, page.getByTestId('param-max-tokens'))
  await page.keyboard.press('Control+A')
  await page.keyboard.type(String(n))
  await tabTo(page, page.getByTestId('params-save'))
  await page.keyboard.press('Enter')
  await expect(page.getByTestId('toast').last()).toBeVisible()
}

test('chat by keyboard only: send, stop, regenerate, edit, switch branch, sessions list', async ({ page }) => {
  await page.goto('/chat?model=smol')
  await expect(page.getByTestId('chat-model')).toHaveValue('smol')
  await focused(page, 'composer')

  // `/` outside a text field goes to the composer.
  await tabTo(page, page.getByTestId('new-chat'))
  await page.keyboard.press('/')
  await focused(page, 'composer')

  await setMaxTokens(page, 400)

  // Ctrl+K goes to the composer; Enter sends; Esc stops the stream wherever the focus is.
  await page.keyboard.press('Control+K')
  await focused(page, 'composer')
  await page.keyboard.type('Write a long story about a llama who learns to code.')
  await page.keyboard.press('Enter')
  await expect(page.getByTestId('stop')).toBeVisible()
  await expect(answers(page).last().getByTestId('answer')).not.toHaveText('')
  await page.keyboard.press('Escape')
  await finished(page)
  await expect(answers(page).last().getByTestId('answer-stopped')).toBeVisible()

  await setMaxTokens(page, 8)

  // Regenerate: a button reached by Tab, named for screen readers.
  const regenerate = answers(page).last().getByTestId('regenerate')
  await expect(regenerate).toHaveAttribute('aria-label', 'Regenerate')
  await tabTo(page, regenerate, { back: true })
  await page.keyboard.press('Enter')
  await finished(page)
  await expect(answers(page).last().getByTestId('branch-pos')).toHaveText('Branch 2 of 2')

  // Edit the question: Enter opens the box with the focus in it, Enter sends the new branch.
  const edit = page.getByTestId('msg-user').first().getByTestId('edit')
  await expect(edit).toHaveAttribute('aria-label', 'Edit')
  await tabTo(page, edit, { back: true })
  await page.keyboard.press('Enter')
  await focused(page, 'edit-box')
  await page.keyboard.press('Control+A')
  await page.keyboard.type('Say hello.')
  await page.keyboard.press('Enter')
  await finished(page)
  const question = page.getByTestId('msg-user').first()
  await expect(question.getByTestId('branch-pos')).toHaveText('Branch 2 of 2')

  // Switch back to the first branch with the branch buttons.
  await tabTo(page, question.getByRole('button', { name: 'Previous branch' }), { back: true })
  await page.keyboard.press('Enter')
  await expect(page.getByTestId('msg-user').first()).toContainText('llama who learns to code')
  const first = new URL(page.url()).searchParams.get('session')

  // A second conversation, then back to the first through the list: arrows and Enter.
  await tabTo(page, page.getByTestId('new-chat'), { back: true })
  await page.keyboard.press('Enter')
  await focused(page, 'composer')
  await page.keyboard.type('Hi')
  await page.keyboard.press('Enter')
  await finished(page)
  await expect(page.getByTestId('session')).toHaveCount(2)
  const opens = page.getByTestId('session-open')
  await tabTo(page, opens.first(), { back: true })
  await page.keyboard.press('ArrowDown')
  await expect(opens.nth(1)).toBeFocused()
  await page.keyboard.press('ArrowUp')
  await expect(opens.nth(0)).toBeFocused()
  await page.keyboard.press('End')
  await page.keyboard.press('Enter')
  await expect(page.getByTestId('msg-user').first()).toContainText('llama who learns to code')
  expect(new URL(page.url()).searchParams.get('session')).toBe(first)
  await expect(opens.nth(1)).toHaveAttribute('aria-current', 'true')

  // The keys are written down in the page.
  await tabTo(page, page.getByTestId('keys-toggle'))
  await page.keyboard.press('Enter')
  await expect(page.getByTestId('keys-help')).toContainText('Ctrl')
  await page.keyboard.press('Escape')
  await expect(page.getByTestId('keys-help')).toHaveCount(0)
})
