import { api, type Pipeline } from '../api.ts'
import { LineChart } from '../charts.ts'
import { fmt, h, time } from '../dom.ts'
import { live } from '../live.ts'

/** The stored ingest-rate series (a point per 10 s): the chart starts with the last two hours of it. */
const INGEST_SERIES = 'datapulse.ingest.events_per_second'
const HISTORY_MS = 2 * 3_600_000
/** Live points kept after the history (one a second). */
const LIVE_POINTS = 600

/** Ingest rate (the stored history, then live) and every pipeline with status, counters and lag, live. */
export function overview(root: HTMLElement): () => void {
  const kpis = h('div', { class: 'kpis', 'aria-live': 'polite' })
  const chartEl = h('div', { class: 'chart', role: 'img', 'aria-label': 'Ingest rate, events per second' })
  const body = h('tbody')
  root.append(
    h('h1', {}, 'Overview'),
    h('section', { class: 'card' }, h('h2', {}, 'Ingest rate (events/s)'), kpis, chartEl),
    h(
      'section',
      { class: 'card' },
      h('h2', {}, 'Pipelines'),
      h(
        'table',
        { 'aria-label': 'Pipelines' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ...['Name', 'Status', 'Source', 'In', 'Out', 'Filtered', 'Late', 'Errors', 'Results', 'Lag'].map(
              (c, i) => h('th', { class: i >= 3 ? 'num' : undefined, scope: 'col' }, c),
            ),
          ),
        ),
        body,
      ),
    ),
  )
  const chart = new LineChart(chartEl)
  // the stored history first (every 10 s), then the live rate (every second) after its last point
  let history: Array<[number, number]> = []
  const xs: number[] = []
  const rates: number[] = []
  const draw = () => {
    const lastStored = history.length > 0 ? history[history.length - 1][0] : Number.NEGATIVE_INFINITY
    const live = xs.map((x, i) => [x, rates[i]] as [number, number]).filter(([x]) => x > lastStored)
    const points = [...history, ...live]
    if (points.length === 0) return
    chart.set(
      points.map((p) => p[0]),
      [{ name: 'events/s', values: points.map((p) => p[1]) }],
    )
    const at = (x: number) => time(new Date(x * 1000).toISOString())
    chartEl.setAttribute(
      'aria-label',
      `Ingest rate, events per second, ${at(points[0][0])} to ${at(points[points.length - 1][0])}`,
    )
  }
  // the history up to the server's time (its clock, not the browser's), loaded with the first stats
  const loadHistory = (serverNow: number) => {
    const from = new Date(serverNow - HISTORY_MS).toISOString()
    void api<{ series: Array<{ points: Array<{ timestamp: string; value: number | null }> }> }>(
      'GET',
      `/api/metrics?name=${INGEST_SERIES}&from=${encodeURIComponent(from)}&step=10s&agg=avg`,
    ).then((r) => {
      if (!r.ok || r.value.series.length === 0) return
      history = r.value.series[0].points
        .filter((p) => p.value !== null)
        .map((p) => [Date.parse(p.timestamp) / 1000, p.value as number])
      draw()
    })
  }
  const row = (p: Pipeline) =>
    h(
      'tr',
      { 'data-pipeline': p.id },
      h('td', {}, h('a', { href: `#/pipelines/${p.id}` }, p.name)),
      h(
        'td',
        {},
        h('span', { class: `status ${p.status}` }, p.status),
        p.stats.condition === 'degraded'
          ? h('span', { class: 'degraded', title: p.stats.condition_reason }, ' degraded')
          : null,
      ),
      h('td', {}, p.source_topic),
      ...[
        p.stats.events_in,
        p.stats.events_out,
        p.stats.filtered,
        p.stats.late,
        p.stats.errors,
        p.stats.results,
        p.stats.lag,
      ].map((n) => h('td', { class: 'num' }, fmt(n))),
    )
  const stop = live(undefined, {
    stats: (s) => {
      if (xs.length === 0) loadHistory(Date.parse(s.at))
      xs.push(Date.parse(s.at) / 1000)
      rates.push(s.per_second)
      if (xs.length > LIVE_POINTS) {
        xs.shift()
        rates.shift()
      }
      draw()
      kpis.replaceChildren(
        h('div', { class: 'kpi' }, h('b', {}, fmt(s.ingested_total)), 'events ingested'),
        h('div', { class: 'kpi' }, h('b', {}, fmt(s.per_second)), 'events/s (10 s)'),
        h(
          'div',
          { class: 'kpi' },
          h('b', {}, `${s.pipelines.filter((p) => p.status === 'running').length} / ${s.pipelines.length}`),
          'pipelines running',
        ),
      )
      body.replaceChildren(
        ...(s.pipelines.length > 0
          ? s.pipelines.map(row)
          : [
              h(
                'tr',
                {},
                h(
                  'td',
                  { colspan: 10, class: 'muted' },
                  'No pipelines yet: ',
                  h('a', { href: '#/new' }, 'create one'),
                ),
              ),
            ]),
      )
    },
  })
  return () => {
    stop()
    chart.destroy()
  }
}
