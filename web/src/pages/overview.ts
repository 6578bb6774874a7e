import type { Pipeline } from '../api.ts'
import { LineChart } from '../charts.ts'
import { fmt, h } from '../dom.ts'
import { live } from '../live.ts'

/** Ingest rate over the last minutes and every pipeline with status, counters and lag, live. */
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
  const xs: number[] = []
  const rates: number[] = []
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
      xs.push(Date.parse(s.at) / 1000)
      rates.push(s.per_second)
      if (xs.length > 300) {
        xs.shift()
        rates.shift()
      }
      chart.set(xs, [{ name: 'events/s', values: rates }])
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
