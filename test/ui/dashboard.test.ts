import assert from 'node:assert/strict'
import { type TestContext, test } from 'node:test'
import type { Page } from 'playwright-core'
import { ARTIFACTS, browser } from '../helpers/browser.ts'
import { eventually, startServer, type TestServer } from '../helpers/server.ts'

const ingest = (server: TestServer, events: unknown[]) =>
  server.call('POST', '/api/events/ingest', { events })

async function tableText(page: Page, selector: string): Promise<string> {
  return (await page.locator(selector).textContent()) ?? ''
}

/** A server and a browser page, with the page's errors collected (undefined without a browser). */
async function dashboard(t: TestContext) {
  const context = await browser(t)
  if (!context) return undefined
  const server = await startServer(t)
  const page = await context.newPage()
  const problems: string[] = []
  page.on('pageerror', (err) => problems.push(err.message))
  return { server, page, problems }
}

test('dashboard: create a pipeline with the form, watch its windows update live, see API errors beside fields', async (t) => {
  const opened = await dashboard(t)
  if (!opened) return
  const { server, page, problems } = opened

  // a browser asking / for a page lands on the dashboard
  await page.goto(`${server.url}/`)
  assert.match(page.url(), /\/ui$/)
  await page.getByRole('heading', { name: 'Overview' }).waitFor()

  await page.getByRole('link', { name: 'New pipeline' }).click()
  await page.getByLabel('Name').fill('ui-clicks')
  await page.getByLabel('Source topic').fill('clicks')
  await page.getByLabel('Window (s) / session gap (s)').fill('3600')
  await page.getByLabel('Group by (comma-separated)').fill('data.page')
  await page.getByLabel('Functions').fill('count, sum:data.ms')
  await page.getByRole('button', { name: 'Create pipeline' }).click()
  await page.waitForURL(/#\/pipelines\//)
  const id = page.url().split('#/pipelines/')[1]
  const created = await server.call('GET', `/api/pipelines/${id}`)
  assert.equal(created.body.name, 'ui-clicks')
  assert.equal(created.body.status, 'running')
  assert.deepEqual(created.body.transformations, [
    {
      aggregate: { window_seconds: 3600, functions: ['count', { sum: 'data.ms' }], group_by: ['data.page'] },
    },
  ])

  const click = (page: string, ms: number) => ({ event_type: 'click', source: 'web', data: { page, ms } })
  await ingest(server, [click('/home', 10), click('/home', 20), click('/cart', 5)])
  await page.locator('#windows').filter({ hasText: 'count: 2, sum_data_ms: 30' }).first().waitFor()
  assert.match(await tableText(page, '#windows'), /\/cart.*count: 1, sum_data_ms: 5/s)
  await page.locator('.chart canvas').first().waitFor()
  // new events arrive: the table moves without a reload
  await ingest(server, [click('/home', 5)])
  await page.locator('#windows').filter({ hasText: 'count: 3, sum_data_ms: 35' }).first().waitFor()
  await page.screenshot({ path: `${ARTIFACTS}dashboard-pipeline.png`, fullPage: true })

  // the overview lists it with its counters
  await page.getByRole('link', { name: 'Overview' }).click()
  await page.locator('table[aria-label="Pipelines"]').filter({ hasText: 'ui-clicks' }).first().waitFor()
  await page.screenshot({ path: `${ARTIFACTS}dashboard-overview.png`, fullPage: true })

  // the editor previews the spec over the topic's last events as it changes, saving nothing
  await page.getByRole('link', { name: 'New pipeline' }).click()
  await page.getByLabel('Name').fill('ui-preview')
  await page.getByLabel('Source topic').fill('clicks')
  await page.getByLabel('Window (s) / session gap (s)').fill('3600')
  await page.getByLabel('Group by (comma-separated)').fill('data.page')
  await page.getByLabel('Functions').fill('count, max:data.ms')
  await page.locator('#preview-summary').filter({ hasText: '4 events' }).waitFor()
  assert.match(await tableText(page, '#preview-windows'), /\/home.*"count":3,"max_data_ms":20.*open/s)
  await page.getByLabel('Operator').selectOption('eq')
  await page.getByLabel('Field').fill('data.page')
  await page.getByLabel('Value (JSON or text)').fill('/cart')
  await page.locator('#preview-summary').filter({ hasText: '3 dropped' }).waitFor()
  assert.doesNotMatch(await tableText(page, '#preview-windows'), /\/home/)
  await page.getByLabel('Window (s) / session gap (s)').fill('-1')
  await page.locator('#preview-error').filter({ hasText: 'must be > 0' }).waitFor()
  await page.screenshot({ path: `${ARTIFACTS}dashboard-editor-preview.png`, fullPage: true })
  assert.equal((await server.call('GET', '/api/pipelines')).body.pipelines.length, 1)

  // an invalid spec: the API's message shows beside the field it names
  await page.getByRole('link', { name: 'New pipeline' }).click()
  await page.getByLabel('Name').fill('bad one')
  await page.getByLabel('Source topic').fill('clicks')
  await page.getByLabel('Window (s) / session gap (s)').fill('-5')
  await page.getByRole('button', { name: 'Create pipeline' }).click()
  await page.locator('#f-size-error').filter({ hasText: 'must be > 0' }).waitFor()
  assert.match((await page.locator('#f-name-error').textContent()) ?? '', /letters, digits/)
  assert.equal(await page.getByLabel('Window (s) / session gap (s)').getAttribute('aria-invalid'), 'true')
  // and in the JSON editor, under it
  await page.getByRole('button', { name: 'Edit as JSON' }).click()
  await page
    .getByLabel('Pipeline JSON')
    .fill('{"name":"x","source_topic":"t","transformation":{"aggregate":{"window_seconds":60}}}')
  await page.getByRole('button', { name: 'Create from JSON' }).click()
  await page
    .locator('#json-errors')
    .filter({ hasText: '/transformation/aggregate/function is required' })
    .waitFor()
  await page.screenshot({ path: `${ARTIFACTS}dashboard-editor-errors.png`, fullPage: true })

  // phone width: still usable
  await page.setViewportSize({ width: 390, height: 844 })
  await page.goto(`${server.url}/ui#/pipelines/${id}`)
  await page.locator('#windows').filter({ hasText: 'count: 3' }).first().waitFor()
  await page.screenshot({ path: `${ARTIFACTS}dashboard-phone.png`, fullPage: true })

  // stop and delete from the page
  await page.setViewportSize({ width: 1440, height: 900 })
  await page.getByRole('button', { name: 'Stop' }).click()
  await page.locator('.status', { hasText: /^stopped$/ }).waitFor()
  page.once('dialog', (d) => void d.accept())
  await page.getByRole('button', { name: 'Delete' }).click()
  await page.waitForURL(/#\/$/)
  assert.equal((await server.call('GET', `/api/pipelines/${id}`)).status, 404)
  assert.deepEqual(problems, [])
})

test('dashboard: metrics explorer and lookup tables', async (t) => {
  const context = await browser(t)
  if (!context) return
  const server = await startServer(t)
  const page = await context.newPage()
  const now = Date.now()
  await server.call('POST', '/api/metrics', {
    metrics: Array.from({ length: 30 }, (_, i) => ({
      name: 'cpu.usage',
      value: i % 7,
      tags: { host: i % 2 ? 'a' : 'b' },
      timestamp: now - i * 60_000,
    })),
  })
  await page.goto(`${server.url}/ui#/metrics`)
  await page.locator('#m-name option[value="cpu.usage"]').waitFor({ state: 'attached' })
  await page.getByLabel('Tags').fill('host=a')
  await page.getByRole('button', { name: 'Show' }).click()
  await page.locator('.chart canvas').waitFor()
  await page.screenshot({ path: `${ARTIFACTS}dashboard-metrics.png`, fullPage: true })

  await page.getByRole('link', { name: 'Lookup tables' }).click()
  await page.getByLabel('Table', { exact: true }).first().fill('users')
  await page.getByLabel('Key field').fill('id')
  await page
    .getByLabel('Rows as CSV (with a header line) or a JSON array')
    .fill('id,name,tier\n1,Ada,gold\n2,Bob,free\n3,Cy,gold')
  await page.getByRole('button', { name: 'Upload (replaces the table)' }).click()
  await page.locator('table[aria-label="Lookup tables"]').filter({ hasText: 'users' }).first().waitFor()
  await page.getByLabel('Search').fill('gold')
  await page.locator('.rows').filter({ hasText: '2 matching rows' }).first().waitFor()
  assert.match((await page.locator('table[aria-label="Rows"]').textContent()) ?? '', /Ada.*Cy/s)
  assert.deepEqual((await server.call('GET', '/api/lookups/users/2')).body, {
    id: '2',
    name: 'Bob',
    tier: 'free',
  })
  await page.screenshot({ path: `${ARTIFACTS}dashboard-lookups.png`, fullPage: true })
})

test('dashboard: charts follow the data (stored ingest history, latest values, a result picker, long keys), the page follows the state, replay progress', async (t) => {
  const opened = await dashboard(t)
  if (!opened) return
  const { server, page, problems } = opened
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`${r.status()} ${r.url()}`)
  })
  // twenty minutes of stored ingest rate, as the server keeps it (a point per 10 s)
  const now = Date.now()
  const from = now - (now % 10_000) - 20 * 60_000
  await server.call('POST', '/api/metrics', {
    metrics: Array.from({ length: 120 }, (_, i) => ({
      name: 'datapulse.ingest.events_per_second',
      value: 100 + (i % 12) * 10,
      timestamp: from + i * 10_000,
    })),
  })
  const longKey = `/products/${'very-long-category-name/'.repeat(5)}item`
  const p = (
    await server.call('POST', '/api/pipelines', {
      name: 'pages',
      description: 'Clicks per page and the time spent, hourly',
      source_topic: 'clicks',
      transformation: {
        aggregate: {
          window_seconds: 3600,
          functions: ['count', { sum: 'data.ms' }],
          group_by: ['data.page'],
        },
      },
      start: true,
    })
  ).body
  const click = (page: string, ms: number) => ({ event_type: 'click', source: 'web', data: { page, ms } })
  await server.call('POST', '/api/events/ingest', {
    topic: 'clicks',
    events: [click('/home', 10), click('/home', 20), click(longKey, 7)],
  })

  await page.goto(`${server.url}/ui#/`)
  const chart = page.locator('.chart[aria-label^="Ingest rate"]')
  await chart.locator('canvas').waitFor()
  // the axis starts where the stored history does, not at page load
  const shownFrom = async () => {
    const label = (await chart.getAttribute('aria-label')) ?? ''
    const m = / (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[.\dZ]*) to /.exec(label)
    return m ? Date.parse(m[1].replace(' ', 'T')) : Number.NaN
  }
  await eventually(async () => (Math.abs((await shownFrom()) - from) < 1_000 ? true : undefined), 10_000)
  // the legend shows the latest value without the pointer over the chart
  const value = (await chart.locator('.u-legend .u-series').nth(1).locator('.u-value').textContent()) ?? ''
  assert.match(value, /\d/)
  await page.screenshot({ path: `${ARTIFACTS}dashboard-overview-history.png`, fullPage: true })

  await page.goto(`${server.url}/ui#/pipelines/${p.id}`)
  await page.locator('.description', { hasText: 'Clicks per page and the time spent, hourly' }).waitFor()
  await page.locator('#windows').filter({ hasText: 'count: 2' }).first().waitFor()
  // running: the primary button is Stop, and there is no Start
  await page.getByRole('button', { name: 'Stop' }).waitFor()
  assert.equal(await page.getByRole('button', { name: 'Start' }).count(), 0)
  // a long key wraps in its cell, whole in its title
  const cell = page.locator('#windows .key', { hasText: 'very-long-category-name' })
  assert.equal(await cell.getAttribute('title'), longKey)
  const box = await cell.boundingBox()
  assert.ok(box && box.width <= 460 && box.height > 30, `the key's box: ${JSON.stringify(box)}`)
  // in the legend it is cut, whole on hover; values show without hovering
  const legend = page.locator('.u-legend .u-series .u-label', { hasText: '…' })
  assert.equal(await legend.getAttribute('title'), longKey)
  assert.match(
    (await page.locator('.u-legend .u-series').nth(1).locator('.u-value').textContent()) ?? '',
    /\d/,
  )
  // the chart draws the result picked
  await page.getByLabel('Result to chart').selectOption('sum_data_ms')
  await page.getByRole('heading', { name: 'sum_data_ms by window and key' }).waitFor()
  await page.screenshot({ path: `${ARTIFACTS}dashboard-pipeline-picker.png`, fullPage: true })

  await page.getByRole('button', { name: 'Stop' }).click()
  await page.getByRole('button', { name: 'Start' }).waitFor()
  await page.getByRole('button', { name: 'Start' }).click()
  await page.getByRole('button', { name: 'Stop' }).waitFor()

  // a replay from the page: asked in a dialog, its progress shown until it is live again
  page.once('dialog', (d) => void d.accept('earliest'))
  await page.getByRole('button', { name: 'Replay…' }).click()
  await page.locator('.replay', { hasText: /Replayed from earliest \(every window\): 3 events/ }).waitFor()
  await page.locator('#windows').filter({ hasText: 'count: 2' }).first().waitFor()
  await page.screenshot({ path: `${ARTIFACTS}dashboard-replay.png`, fullPage: true })

  const icon = await server.call('GET', '/ui/assets/favicon.svg')
  assert.equal(icon.status, 200)
  assert.deepEqual(problems, [])
})
