import { api, type DeadLetter, type Pipeline, type WindowRow } from '../api.ts'
import { LineChart } from '../charts.ts'
import { fmt, h, time } from '../dom.ts'
import { live } from '../live.ts'

const MAX_KEYS = 8

function keyLabel(key: Record<string, unknown> | null): string {
  return key === null ? '(all)' : Object.values(key).map(String).join(' / ')
}

/** A replay's progress in one line: how far, how fast, what it recomputes. */
function replayLine(r: NonNullable<Pipeline['stats']['replay']>): string {
  const span = r.target - r.start
  const share = span > 0 ? Math.floor((100 * (r.position - r.start)) / span) : 100
  const what = r.recomputes_from === null ? 'every window' : `the windows from ${time(r.recomputes_from)}`
  const rate = r.events_per_second === null ? '' : `, ${fmt(r.events_per_second)} events/s`
  return r.state === 'done'
    ? `Replayed from ${r.from} (${what}): ${fmt(r.target - r.start)} events${rate}; live since ${time(r.finished_at)}`
    : `Replaying from ${r.from} (${what}): ${share}% · ${fmt(r.position - r.start)} of ${fmt(span)} events${rate}`
}

/** One pipeline: status and actions, live window results (chart per key and table), dead letters. */
export function pipelinePage(root: HTMLElement, id: string): () => void {
  const title = h('h1', {}, 'Pipeline')
  const description = h('p', { class: 'description' })
  const status = h('p', { 'aria-live': 'polite' })
  const replayStatus = h('p', { class: 'replay', 'aria-live': 'polite' })
  const message = h('p', { class: 'errors', role: 'alert' })
  const action = (label: string, run: () => Promise<void>, cls?: string) =>
    h('button', { type: 'button', class: cls, onclick: () => void run() }, label)
  let running = false
  const lifecycle = async () => {
    const r = await api<Pipeline>('POST', `/api/pipelines/${id}/${running ? 'stop' : 'start'}`)
    message.textContent = r.ok ? '' : r.error.message
    if (r.ok) showState(r.value)
  }
  // the primary action follows the state: Stop while it runs, Start otherwise
  const toggle = action('Start', lifecycle)
  const showState = (p: Pipeline) => {
    running = p.status === 'running'
    toggle.textContent = running ? 'Stop' : 'Start'
  }
  const replay = async () => {
    const from = prompt(
      'Replay from where? "earliest", an RFC 3339 time (2026-11-26T10:00:00Z) or an offset. Its windows from there are computed again.',
      'earliest',
    )
    if (from === null) return
    const trimmed = from.trim()
    const r = await api<Pipeline>('POST', `/api/pipelines/${id}/replay`, {
      from: /^\d+$/.test(trimmed) ? Number(trimmed) : trimmed,
    })
    message.textContent = r.ok ? '' : r.error.message
    if (r.ok) showState(r.value)
  }
  const actions = h(
    'div',
    { class: 'actions' },
    toggle,
    action('Replay…', replay, 'secondary'),
    action(
      'Delete',
      async () => {
        if (!confirm('Delete this pipeline and its results?')) return
        const r = await api('DELETE', `/api/pipelines/${id}`)
        if (r.ok) location.hash = '#/'
        else message.textContent = r.error.message
      },
      'danger',
    ),
  )
  const chartEl = h('div', { class: 'chart', role: 'img', 'aria-label': 'Window results by key' })
  const chartTitle = h('h2', {}, 'Results by window')
  // which result the chart draws (the first until one is picked)
  let picked: string | undefined
  let lastWindows: WindowRow[] = []
  const picker = h('select', {
    'aria-label': 'Result to chart',
    onchange: (e) => {
      picked = (e.target as HTMLSelectElement).value
      drawChart(lastWindows)
    },
  })
  const windowsBody = h('tbody')
  const deadBody = h('tbody')
  root.append(
    title,
    description,
    status,
    replayStatus,
    actions,
    message,
    h('section', { class: 'card' }, h('div', { class: 'card-head' }, chartTitle, picker), chartEl),
    h(
      'section',
      { class: 'card' },
      h('h2', {}, 'Windows (newest first; open ones are moving)'),
      h(
        'table',
        { 'aria-label': 'Windows', id: 'windows' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ...['Start', 'End', 'Key', 'Results', 'State'].map((c) => h('th', { scope: 'col' }, c)),
          ),
        ),
        windowsBody,
      ),
    ),
    h(
      'section',
      { class: 'card' },
      h('h2', {}, 'Dead letters (late and unprocessable events)'),
      h(
        'table',
        { 'aria-label': 'Dead letters' },
        h(
          'thead',
          {},
          h('tr', {}, ...['At', 'Reason', 'Detail', 'Event'].map((c) => h('th', { scope: 'col' }, c))),
        ),
        deadBody,
      ),
    ),
  )
  const chart = new LineChart(chartEl)
  const showWindows = (windows: WindowRow[]) => {
    windowsBody.replaceChildren(
      ...windows.slice(0, 200).map((w) =>
        h(
          'tr',
          { class: w.closed ? 'closed' : 'open' },
          h('td', {}, time(w.window_start)),
          h('td', {}, time(w.window_end)),
          h('td', {}, h('div', { class: 'key', title: keyLabel(w.key) }, keyLabel(w.key))),
          h(
            'td',
            {},
            Object.entries(w.results)
              .map(([k, v]) => `${k}: ${fmt(v)}`)
              .join(', '),
          ),
          h('td', {}, w.closed ? 'closed' : 'open'),
        ),
      ),
    )
    drawChart(windows)
  }
  const drawChart = (windows: WindowRow[]) => {
    lastWindows = windows
    const names = [...new Set(windows.flatMap((w) => Object.keys(w.results)))]
    if (names.join('\u0000') !== [...picker.options].map((o) => o.value).join('\u0000'))
      picker.replaceChildren(...names.map((n) => h('option', { value: n }, n)))
    const fn = picked !== undefined && names.includes(picked) ? picked : names[0]
    if (!fn) return
    picker.value = fn
    chartTitle.textContent = `${fn} by window and key`
    const totals = new Map<string, number>()
    for (const w of windows) totals.set(keyLabel(w.key), (totals.get(keyLabel(w.key)) ?? 0) + 1)
    const keys = [...totals.keys()].slice(0, MAX_KEYS)
    const starts = [...new Set(windows.map((w) => Date.parse(w.window_start) / 1000))].sort((a, b) => a - b)
    const index = new Map(starts.map((s, i) => [s, i]))
    const series = keys.map((k) => ({ name: k, values: starts.map(() => null as number | null) }))
    const byName = new Map(series.map((s) => [s.name, s]))
    for (const w of windows) {
      const s = byName.get(keyLabel(w.key))
      if (s) s.values[index.get(Date.parse(w.window_start) / 1000)!] = w.results[fn] ?? null
    }
    chart.set(starts, series)
  }
  const showDead = (letters: DeadLetter[]) =>
    deadBody.replaceChildren(
      ...(letters.length === 0
        ? [h('tr', {}, h('td', { colspan: 4, class: 'muted' }, 'None'))]
        : letters.map((d) =>
            h(
              'tr',
              {},
              h('td', {}, time(d.at)),
              h('td', {}, d.reason),
              h('td', {}, d.detail),
              h('td', {}, JSON.stringify(d.event.data).slice(0, 120)),
            ),
          )),
    )
  const stop = live(id, {
    stats: (s) => {
      const p = s.pipelines.find((x) => x.id === id)
      if (!p) {
        status.textContent = 'This pipeline does not exist (any more).'
        return
      }
      title.textContent = `Pipeline ${p.name}`
      description.textContent = typeof p.description === 'string' ? p.description : ''
      replayStatus.textContent = p.stats.replay ? replayLine(p.stats.replay) : ''
      showState(p)
      status.replaceChildren(
        h('span', { class: `status ${p.status}` }, p.status),
        p.stats.condition === 'degraded'
          ? h('span', { class: 'degraded' }, ` degraded: ${p.stats.condition_reason}`)
          : '',
        h(
          'span',
          { class: 'muted' },
          ` · ${p.source_topic}${p.sink_topic ? ` → ${p.sink_topic}` : ''} · in ${fmt(p.stats.events_in)} · out ${fmt(p.stats.events_out)} · late ${fmt(p.stats.late)} · errors ${fmt(p.stats.errors)} · lag ${fmt(p.stats.lag)} · watermark ${time(p.stats.watermark)}`,
        ),
        // with several source partitions, which one holds the watermark back
        p.stats.partitions.length > 1
          ? h(
              'div',
              { class: 'muted partitions' },
              p.stats.partitions
                .map(
                  (q) =>
                    `p${q.partition}: in ${fmt(q.events_in)} · lag ${fmt(q.lag)} · watermark ${time(q.watermark)}`,
                )
                .join('   '),
            )
          : '',
      )
    },
    windows: showWindows,
    deadLetters: showDead,
  })
  return () => {
    stop()
    chart.destroy()
  }
}
