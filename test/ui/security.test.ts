import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Page } from 'playwright-core'
import { ARTIFACTS, browser } from '../helpers/browser.ts'
import { bearer, configuredAdmin } from '../helpers/keys.ts'
import { startServer } from '../helpers/server.ts'

/** What the page reported breaking its CSP (collected from the first script on). */
async function watchCsp(page: Page): Promise<() => Promise<string[]>> {
  // page code as text: the tests are type-checked without the DOM's types
  await page.addInitScript({
    content:
      "window.__csp = []; document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI))",
  })
  const console: string[] = []
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) console.push(m.text())
  })
  return async () => [...console, ...((await page.evaluate('window.__csp')) as string[])]
}

test('dashboard with keys: asks for one once, then works fully under its CSP, live updates included', async (t) => {
  const context = await browser(t)
  if (!context) return
  const admin = configuredAdmin()
  const server = await startServer(t, { env: admin.env })
  const auth = bearer(admin.key)
  const page = await context.newPage()
  const cspProblems = await watchCsp(page)
  const errors: string[] = []
  page.on('pageerror', (err) => errors.push(err.message))

  await page.goto(`${server.url}/ui`)
  await page.getByRole('heading', { name: 'API key' }).waitFor()
  await page.getByLabel('Key').fill(`${admin.key.slice(0, -1)}x`)
  await page.getByRole('button', { name: 'Use key' }).click()
  // a wrong key: asked again, with the server's reason
  await page.locator('#key-why').filter({ hasText: 'not valid' }).waitFor()
  await page.getByLabel('Key').fill(admin.key)
  await page.getByRole('button', { name: 'Use key' }).click()
  await page.getByRole('heading', { name: 'Overview' }).waitFor()

  await page.getByRole('link', { name: 'New pipeline' }).click()
  await page.getByLabel('Name').fill('keyed')
  await page.getByLabel('Source topic').fill('clicks')
  await page.getByLabel('Window (s) / session gap (s)').fill('3600')
  await page.getByLabel('Group by (comma-separated)').fill('data.page')
  await page.getByLabel('Functions').fill('count')
  await page.getByRole('button', { name: 'Create pipeline' }).click()
  await page.waitForURL(/#\/pipelines\//)
  const click = (p: string) => ({ event_type: 'click', source: 'web', data: { page: p } })
  await server.call('POST', '/api/events/ingest', { events: [click('/a'), click('/a'), click('/b')] }, auth)
  // the stream is read with the key in a header: the table moves by itself
  await page.locator('#windows').filter({ hasText: 'count: 2' }).first().waitFor()
  await server.call('POST', '/api/events/ingest', { events: [click('/a')] }, auth)
  await page.locator('#windows').filter({ hasText: 'count: 3' }).first().waitFor()
  await page.locator('.chart canvas').first().waitFor()
  await page.getByRole('button', { name: 'Stop' }).click()
  await page.locator('.status', { hasText: /^stopped$/ }).waitFor()

  await page.getByRole('link', { name: 'Overview' }).click()
  await page.locator('table[aria-label="Pipelines"]').filter({ hasText: 'keyed' }).first().waitFor()
  await page.getByRole('link', { name: 'Lookup tables' }).click()
  await page.getByLabel('Table', { exact: true }).first().fill('users')
  await page.getByLabel('Key field').fill('id')
  await page.getByLabel('Rows as CSV (with a header line) or a JSON array').fill('id,name\n1,Ada')
  await page.getByRole('button', { name: 'Upload (replaces the table)' }).click()
  await page.locator('table[aria-label="Lookup tables"]').filter({ hasText: 'users' }).first().waitFor()
  await page.screenshot({ path: `${ARTIFACTS}dashboard-with-key.png`, fullPage: true })

  // the key went nowhere but the Authorization header: not into a URL the server saw
  const urls: string[] = []
  page.on('request', (r) => urls.push(r.url()))
  await page.reload()
  await page.locator('table[aria-label="Lookup tables"]').filter({ hasText: 'users' }).first().waitFor()
  assert.ok(urls.length > 0 && urls.every((u) => !u.includes(admin.key.slice(3))))

  // "Forget key" asks again
  await page.getByRole('button', { name: 'Forget key' }).click()
  await page.getByRole('heading', { name: 'API key' }).waitFor()
  assert.deepEqual(await cspProblems(), [])
  assert.deepEqual(errors, [])
})

test('stored XSS: markup in every field a user controls is shown as text', async (t) => {
  const context = await browser(t)
  if (!context) return
  const server = await startServer(t)
  const payload = (where: string) =>
    `<img src=x onerror="window.__xss='${where}'"><script>window.__xss='${where}'</script>`
  const created = await server.call('POST', '/api/pipelines', {
    name: 'xss',
    source_topic: 'x',
    start: true,
    transformations: [
      {
        aggregate: { window_seconds: 3600, group_by: ['data.user'], functions: ['count', { sum: 'data.n' }] },
      },
    ],
  })
  assert.equal(created.status, 201)
  const events = [
    { event_type: payload('type'), source: payload('source'), data: { user: payload('key'), n: 1 } },
    { event_type: 'e', source: 's', data: { user: 'u', n: payload('dead') } },
  ]
  assert.equal((await server.call('POST', '/api/events/ingest', { topic: 'x', events })).status, 200)
  assert.equal(
    (
      await server.call(
        'PUT',
        '/api/lookups/people?key=id',
        `id,name\n1,"${payload('lookup').replaceAll('"', '""')}"`,
        { 'content-type': 'text/csv' },
      )
    ).status,
    200,
  )
  assert.equal(
    (
      await server.call('POST', '/api/metrics', {
        metrics: [{ name: 'cpu.usage', value: 1, tags: { host: payload('tag') }, timestamp: Date.now() }],
      })
    ).status,
    200,
  )
  const page = await context.newPage()
  const cspProblems = await watchCsp(page)
  const visit = async (hash: string, ready: () => Promise<void>) => {
    await page.goto(`${server.url}/ui#${hash}`)
    await ready()
  }
  await visit(`/pipelines/${created.body.id}`, async () => {
    await page.locator('#windows').filter({ hasText: `window.__xss='key'` }).first().waitFor()
    await page
      .locator('table[aria-label="Dead letters"]')
      .filter({ hasText: `window.__xss='dead'` })
      .first()
      .waitFor()
  })
  await visit('/', () =>
    page.locator('table[aria-label="Pipelines"]').filter({ hasText: 'xss' }).first().waitFor(),
  )
  await visit('/lookups', async () => {
    await page.locator('#l-browse option[value="people"]').waitFor({ state: 'attached' })
    await page.locator('#l-browse').selectOption('people')
    await page
      .locator('table[aria-label="Rows"]')
      .filter({ hasText: `window.__xss='lookup'` })
      .first()
      .waitFor()
  })
  await visit('/metrics', async () => {
    await page.locator('#m-name option[value="cpu.usage"]').waitFor({ state: 'attached' })
    await page.getByRole('button', { name: 'Show' }).click()
    await page.locator('.chart canvas').waitFor()
    // the legend cuts a long series name: the whole of it is the label's title, all of it text
    const label = page.locator(`.u-legend .u-label[title*="window.__xss='tag'"]`).first()
    await label.waitFor()
    assert.match((await label.textContent()) ?? '', /^host=<img src=x onerror=.*…$/)
  })
  assert.equal(await page.evaluate('window.__xss'), undefined)
  assert.equal(await page.locator('#app img, #app script').count(), 0)
  // the CSP would have stopped an inline script too; nothing even tried
  assert.deepEqual(await cspProblems(), [])
})
