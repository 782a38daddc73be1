import { test, expect, screenshots } from './util'
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

// A real MCP server (the official Python SDK's, scripts/py/mcp_test_server.py) added, listed
// with its tools and edited from Settings.
const PYTHON = process.env.LLAMA_DASHBOARD_PYTHON
const SCRIPT = resolve(process.cwd(), '../scripts/py/mcp_test_server.py')

test('settings: an MCP server is added, shows its tools, is edited and keeps its hidden values', async ({ page, request }) => {
  test.skip(!PYTHON && !process.env.CI, 'LLAMA_DASHBOARD_PYTHON (scripts/setup.sh) is not set')
  expect(PYTHON, 'LLAMA_DASHBOARD_PYTHON').toBeTruthy()
  const dir = mkdtempSync(join(tmpdir(), 'ld-e2e-mcp-'))
  const gate = join(dir, 'gate')
  await request.delete('/api/mcp/servers/t')

  await page.goto('/settings')
  const add = page.getByTestId('mcp-add-form')
  await add.getByTestId('mcp-name').fill('t')
  await add.getByTestId('mcp-command').fill(PYTHON!)
  await add.getByTestId('mcp-args').fill(SCRIPT)
  // A line that is not NAME=value is refused in words before anything is sent.
  await add.getByTestId('mcp-env').fill('just words')
  await add.getByTestId('mcp-save').click()
  await expect(add.getByTestId('mcp-form-problem')).toContainText('just words')
  await add.getByTestId('mcp-env').fill(`MCP_TEST_GATE=${gate}`)
  await add.getByTestId('mcp-save').click()

  // Its tools, by name and description, folded under the server.
  const server = page.locator('[data-testid="mcp-server"][data-name="t"]')
  await expect(server.getByTestId('mcp-state')).toHaveText('running')
  const tools = server.getByTestId('mcp-tools')
  await expect(tools.locator('summary')).toContainText('tools')
  await expect(tools.getByText('Echo the message back.')).not.toBeVisible()
  await tools.locator('summary').click()
  await expect(tools.getByTestId('mcp-tool-name').filter({ hasText: /^t_echo$/ })).toBeVisible()
  await expect(tools.getByText('Echo the message back.')).toBeVisible()

  // Edit: the form shows the entry (the env value hidden); one more argument is added.
  await server.getByTestId('mcp-edit').click()
  const edit = server.getByTestId('mcp-edit-form')
  await expect(edit.getByTestId('mcp-name')).toHaveValue('t')
  await expect(edit.getByTestId('mcp-command')).toHaveValue(PYTHON!)
  await expect(edit.getByTestId('mcp-env')).toHaveValue('MCP_TEST_GATE=********')
  const starts = join(dir, 'starts')
  await edit.getByTestId('mcp-args').fill(`${SCRIPT}\n--crash-file\n${starts}`)
  await screenshots(page, 'settings-mcp')
  await edit.getByTestId('mcp-save').click()
  await expect(server.getByTestId('mcp-edit-form')).toHaveCount(0)
  const shown = await (await request.get('/api/mcp/servers/t')).json()
  expect(shown.config.args).toEqual([SCRIPT, '--crash-file', starts])
  expect(shown.config.env).toEqual({ MCP_TEST_GATE: '********' })
  await expect(server.getByTestId('mcp-state')).toHaveText('running')
  await expect.poll(() => existsSync(starts), { message: 'the server was started again with the new arguments' }).toBe(true)

  // The edited server runs with the new arguments and still has the hidden value.
  writeFileSync(gate, '')
  await expect
    .poll(async () => (await (await request.post('/tools', { data: { tool: 't_gate', params: {} } })).json()).plain_text_response)
    .toBe('the gate is open')

  // Disable and enable stay.
  await server.getByTestId('mcp-disable').click()
  await expect(server.getByTestId('mcp-state')).toHaveText('disabled')
  await expect(server.getByTestId('mcp-no-tools')).toBeVisible()
  await server.getByTestId('mcp-enable').click()
  await expect(server.getByTestId('mcp-state')).toHaveText('running')
  await request.delete('/api/mcp/servers/t')
})
