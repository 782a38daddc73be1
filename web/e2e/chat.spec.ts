import { test, expect, screenshots } from './util'
import type { Page } from '@playwright/test'

async function setMaxTokens(page: Page, n: number) {
  await page.getByTestId('params-toggle').click()
  await page.getByTestId('param-max-tokens').fill(String(n))
  await page.getByTestId('params-save').click()
  await page.getByTestId('params-toggle').click()
}

const answers = (page: Page) => page.getByTestId('msg-assistant')
const finished = (page: Page) => expect(page.getByTestId('send')).toBeVisible()

test('chat: a streamed answer, stop, regenerate, edit into a branch, reload', async ({ page }) => {
  await page.goto('/chat?model=smol')
  await expect(page.getByTestId('chat-model')).toHaveValue('smol')
  await setMaxTokens(page, 400)

  // A streamed answer that is stopped midway keeps its text.
  await page.getByTestId('composer').fill('Write a long story about a llama who learns to code.')
  await page.getByTestId('composer').press('Enter')
  await expect(page.getByTestId('stop')).toBeVisible()
  await expect(answers(page).last().getByTestId('answer')).not.toHaveText('')
  await page.getByTestId('stop').click()
  await finished(page)
  await expect(answers(page).last().getByTestId('answer-stopped')).toBeVisible()

  // Shorter answers from here on.
  await setMaxTokens(page, 8)
  await answers(page).last().getByTestId('regenerate').click()
  await finished(page)
  await expect(answers(page).last().getByTestId('branch-pos')).toHaveText('Branch 2 of 2')
  await expect(answers(page).last().getByTestId('answer-tokens')).toBeVisible()

  // Edit the question: a new branch of the conversation.
  await page.getByTestId('msg-user').first().getByTestId('edit').click()
  await page.getByTestId('edit-box').fill('Say hello.')
  await page.getByTestId('edit-send').click()
  await finished(page)
  const question = page.getByTestId('msg-user').first()
  await expect(question.getByTestId('branch-pos')).toHaveText('Branch 2 of 2')
  await expect(question).toContainText('Say hello.')
  await screenshots(page, 'chat')

  // Back to the first branch: the first question and its answers.
  await question.getByRole('button', { name: 'Previous branch' }).click()
  await expect(page.getByTestId('msg-user').first()).toContainText('llama who learns to code')

  // A reload shows the same session and branch.
  const url = page.url()
  expect(url).toContain('session=')
  await page.reload()
  await expect(page.getByTestId('msg-user').first()).toContainText('llama who learns to code')
  await expect(page.getByTestId('session')).toHaveCount(1)
  await expect(answers(page).last().getByTestId('answer-tokens')).toBeVisible()
})
