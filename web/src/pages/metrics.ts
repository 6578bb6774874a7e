import { api } from '../api.ts'
import { LineChart } from '../charts.ts'
import { h } from '../dom.ts'

interface SeriesInfo {
  name: string
  tags: Record<string, string>
  points: number
}

/** Metrics explorer: pick a series name and tags, a range, a step and an aggregate; see the lines. */
export function metricsPage(root: HTMLElement): () => void {
  const name = h('select', { id: 'm-name' })
  const tags = h('input', { id: 'm-tags', type: 'text', placeholder: 'host=a, dc=x' })
  const range = h(
    'select',
    { id: 'm-range' },
    ...[
      ['15m', 900],
      ['1h', 3600],
      ['6h', 21600],
      ['24h', 86400],
      ['7d', 604800],
      ['30d', 2592000],
    ].map(([l, s]) => h('option', { value: s }, l)),
  )
  range.value = '3600'
  const step = h('input', { id: 'm-step', type: 'text', value: '1m' })
  const agg = h(
    'select',
    { id: 'm-agg' },
    ...['avg', 'sum', 'min', 'max', 'count', 'last'].map((a) => h('option', { value: a }, a)),
  )
  const error = h('p', { class: 'errors', role: 'alert' })
  const chartEl = h('div', { class: 'chart', role: 'img', 'aria-label': 'Metric series' })
  const form = h(
    'form',
    { 'aria-label': 'Metric query' },
    h(
      'div',
      { class: 'row' },
      h('label', { for: 'm-name' }, 'Series', name),
      h('label', { for: 'm-tags' }, 'Tags', tags),
      h('label', { for: 'm-range' }, 'Range', range),
      h('label', { for: 'm-step' }, 'Step', step),
      h('label', { for: 'm-agg' }, 'Aggregate', agg),
    ),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Show')),
  )
  root.append(
    h('h1', {}, 'Metrics'),
    h('section', { class: 'card' }, form, error),
    h('section', { class: 'card' }, chartEl),
  )
  const chart = new LineChart(chartEl)
  void api<{ series: SeriesInfo[] }>('GET', '/api/metrics?limit=10000').then((r) => {
    if (!r.ok) return
    const names = [...new Set(r.value.series.map((s) => s.name))].sort()
    name.replaceChildren(...names.map((n) => h('option', { value: n }, n)))
  })
  form.addEventListener('submit', async (e) => {
    e.preventDefault()
    error.textContent = ''
    const to = Date.now()
    const from = to - Number(range.value) * 1000
    const params = new URLSearchParams({
      name: name.value,
      from: String(from),
      to: String(to),
      step: step.value,
      agg: agg.value,
    })
    for (const pair of tags.value.split(',')) {
      const [k, v] = pair.split('=').map((x) => x?.trim())
      if (k && v !== undefined) params.set(`tag.${k}`, v)
    }
    const r = await api<{
      series: Array<{ tags: Record<string, string>; points: Array<{ timestamp: string; value: number }> }>
    }>('GET', `/api/metrics?${params}`)
    if (!r.ok) {
      error.textContent = r.error.message
      return
    }
    const xs = [
      ...new Set(r.value.series.flatMap((s) => s.points.map((p) => Date.parse(p.timestamp) / 1000))),
    ].sort((a, b) => a - b)
    const index = new Map(xs.map((x, i) => [x, i]))
    chart.set(
      xs,
      r.value.series.slice(0, 8).map((s) => {
        const values: Array<number | null> = xs.map(() => null)
        for (const p of s.points) values[index.get(Date.parse(p.timestamp) / 1000)!] = p.value
        return {
          name:
            Object.entries(s.tags)
              .map(([k, v]) => `${k}=${v}`)
              .join(',') || name.value,
          values,
        }
      }),
    )
    if (r.value.series.length === 0) error.textContent = 'No points in this range.'
  })
  return () => chart.destroy()
}
