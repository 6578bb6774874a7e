import { OPERATORS } from '../../../src/engine/stages/filter.ts'
import { api, type Issue, type Pipeline, type PreviewResult } from '../api.ts'
import { h } from '../dom.ts'

/** events of the source topic the editor's preview runs over */
const PREVIEW_LAST = 500

interface Field {
  el: HTMLInputElement | HTMLSelectElement
  error: HTMLElement
}

/**
 * The pipeline editor: a form for the common cases (source, filter, group by, window, functions)
 * and a JSON editor for the whole spec. Submitting shows the API's validation errors beside the
 * field each one names (or under the JSON editor).
 */
export function editor(root: HTMLElement): () => void {
  const fields = new Map<string, Field>()
  const field = (id: string, label: string, input: HTMLInputElement | HTMLSelectElement, hint?: string) => {
    input.id = id
    const error = h('span', { class: 'field-error', id: `${id}-error`, role: 'alert' })
    input.setAttribute('aria-describedby', `${id}-error`)
    fields.set(id, { el: input, error })
    return h('label', { for: id }, label, input, hint ? h('span', { class: 'muted' }, hint) : null, error)
  }
  const text = (value = '', placeholder = '') => h('input', { type: 'text', value, placeholder })
  const select = (options: string[], value: string) => {
    const s = h(
      'select',
      {},
      ...options.map((o) => h('option', { value: o, selected: o === value }, o || '(none)')),
    )
    return s
  }
  const form = h(
    'form',
    { 'aria-label': 'Pipeline form', novalidate: true },
    h(
      'div',
      { class: 'row' },
      field('f-name', 'Name', text('', 'user-analytics')),
      field('f-source', 'Source topic', text('', 'user-events')),
      field('f-sink', 'Sink topic (optional)', text('', 'processed-events')),
    ),
    h('h2', {}, 'Filter (optional)'),
    h(
      'div',
      { class: 'row' },
      field('f-filter-field', 'Field', text('', 'event_type')),
      field('f-filter-op', 'Operator', select(['', ...OPERATORS], '')),
      field('f-filter-value', 'Value (JSON or text)', text('', 'page_view')),
    ),
    h('h2', {}, 'Window'),
    h(
      'div',
      { class: 'row' },
      field('f-kind', 'Kind', select(['tumbling', 'hopping', 'session', 'none'], 'tumbling')),
      field('f-size', 'Window (s) / session gap (s)', text('60')),
      field('f-slide', 'Slide (s, hopping)', text('')),
      field('f-group', 'Group by (comma-separated)', text('', 'data.page')),
      field(
        'f-functions',
        'Functions',
        text('count'),
        'count, sum:data.amount, avg:data.x, p99:data.latency_ms, count_distinct:data.user',
      ),
    ),
    h(
      'label',
      { class: 'inline' },
      h('span', {}, h('input', { type: 'checkbox', id: 'f-start', checked: true }), ' Start it'),
    ),
    h(
      'div',
      { class: 'actions' },
      h('button', { type: 'submit' }, 'Create pipeline'),
      h('button', { type: 'button', class: 'secondary', id: 'to-json' }, 'Edit as JSON'),
    ),
  )
  const json = h('textarea', { id: 'spec-json', 'aria-label': 'Pipeline JSON', spellcheck: 'false' })
  const jsonErrors = h('ul', { class: 'errors', id: 'json-errors', role: 'alert' })
  const jsonCard = h(
    'section',
    { class: 'card' },
    h('h2', {}, 'Full spec (JSON)'),
    json,
    jsonErrors,
    h('div', { class: 'actions' }, h('button', { type: 'button', id: 'submit-json' }, 'Create from JSON')),
  )
  const general = h('ul', { class: 'errors', role: 'alert', id: 'form-errors' })
  const previewBody = h(
    'div',
    { id: 'preview', 'aria-live': 'polite' },
    h('p', { class: 'muted' }, 'Fill in a source topic to see what the pipeline would produce.'),
  )
  const previewCard = h(
    'section',
    { class: 'card' },
    h('h2', {}, `Preview (the source topic's last ${PREVIEW_LAST} events; nothing is saved)`),
    previewBody,
  )
  root.append(
    h('h1', {}, 'New pipeline'),
    h('section', { class: 'card' }, form, general),
    previewCard,
    jsonCard,
  )

  const value = (id: string) => (fields.get(id)?.el.value ?? '').trim()
  /** Builds the spec from the form, and which form field each API path belongs to. */
  const build = (): { spec: Record<string, unknown>; paths: Array<[string, string]> } => {
    const paths: Array<[string, string]> = [
      ['/name', 'f-name'],
      ['/source_topic', 'f-source'],
      ['/sink_topic', 'f-sink'],
    ]
    const transformations: unknown[] = []
    if (value('f-filter-op')) {
      let v: unknown = value('f-filter-value')
      try {
        v = JSON.parse(v as string)
      } catch {}
      const filter: Record<string, unknown> = {
        field: value('f-filter-field'),
        operator: value('f-filter-op'),
      }
      if (!['exists', 'not_exists'].includes(value('f-filter-op'))) filter.value = v
      paths.push(
        ['/transformations/0/filter/field', 'f-filter-field'],
        ['/transformations/0/filter/operator', 'f-filter-op'],
        ['/transformations/0/filter/value', 'f-filter-value'],
      )
      transformations.push({ filter })
    }
    const kind = value('f-kind')
    if (kind !== 'none') {
      const at = `/transformations/${transformations.length}/aggregate`
      const aggregate: Record<string, unknown> = {}
      const size = Number(value('f-size'))
      if (kind === 'session') {
        aggregate.session_gap_seconds = value('f-size') === '' ? undefined : size
        paths.push([`${at}/session_gap_seconds`, 'f-size'])
      } else {
        aggregate.window_seconds = value('f-size') === '' ? undefined : size
        paths.push([`${at}/window_seconds`, 'f-size'])
        if (kind === 'hopping') {
          aggregate.slide_seconds = value('f-slide') === '' ? undefined : Number(value('f-slide'))
          paths.push([`${at}/slide_seconds`, 'f-slide'])
        }
      }
      aggregate.functions = value('f-functions')
        .split(',')
        .map((f) => f.trim())
        .filter(Boolean)
        .map((f) => {
          const [fn, path] = f.split(':').map((x) => x.trim())
          return path ? { [fn]: path } : fn
        })
      const groupBy = value('f-group')
        .split(',')
        .map((g) => g.trim())
        .filter(Boolean)
      if (groupBy.length > 0) aggregate.group_by = groupBy
      paths.push(
        [`${at}/functions`, 'f-functions'],
        [`${at}/function`, 'f-functions'],
        [`${at}/group_by`, 'f-group'],
        [at, 'f-size'],
      )
      transformations.push({ aggregate })
    }
    const spec: Record<string, unknown> = { name: value('f-name'), source_topic: value('f-source') }
    if (value('f-sink')) spec.sink_topic = value('f-sink')
    if (transformations.length > 0) spec.transformations = transformations
    if ((document.getElementById('f-start') as HTMLInputElement).checked) spec.start = true
    return { spec, paths }
  }

  const clear = () => {
    for (const f of fields.values()) {
      f.error.textContent = ''
      f.el.removeAttribute('aria-invalid')
    }
    general.replaceChildren()
    jsonErrors.replaceChildren()
  }
  const submit = async (spec: unknown, paths: Array<[string, string]>, list: HTMLElement) => {
    clear()
    const res = await api<Pipeline>('POST', '/api/pipelines', spec)
    if (res.ok) {
      location.hash = `#/pipelines/${res.value.id}`
      return
    }
    const details: Issue[] =
      res.error.details.length > 0 ? res.error.details : [{ path: '/', message: res.error.message }]
    for (const d of details) {
      // the longest form path that is a prefix of the error's path
      const match = paths
        .filter(([p]) => d.path === p || d.path.startsWith(`${p}/`))
        .sort((a, b) => b[0].length - a[0].length)[0]
      const f = match && fields.get(match[1])
      if (f) {
        f.error.textContent = f.error.textContent ? `${f.error.textContent}; ${d.message}` : d.message
        f.el.setAttribute('aria-invalid', 'true')
      } else list.append(h('li', {}, `${d.path} ${d.message}`))
    }
  }
  // the preview follows the form: a request a moment after the last change, the newest answer wins
  let previewTimer: ReturnType<typeof setTimeout> | undefined
  let previewSeq = 0
  const showPreview = async () => {
    const { spec } = build()
    delete spec.start
    if (!spec.source_topic) return
    const seq = ++previewSeq
    const res = await api<PreviewResult>('POST', '/api/pipelines/preview', {
      pipeline: spec,
      last: PREVIEW_LAST,
    })
    if (seq !== previewSeq) return
    if (!res.ok) {
      previewBody.replaceChildren(
        h('p', { class: 'muted', id: 'preview-error' }, `Not yet a valid pipeline: ${res.error.message}`),
      )
      return
    }
    const p = res.value
    const stages = p.stages
      .map(
        (st) =>
          `${st.stage}: ${st.in} in, ${st.out} out${st.dropped ? `, ${st.dropped} dropped` : ''}${st.late ? `, ${st.late} late` : ''}${st.errors ? `, ${st.errors} errors` : ''}`,
      )
      .join(' → ')
    const rows = p.windows
      .slice(0, 10)
      .map((w) =>
        h(
          'tr',
          {},
          h('td', {}, w.window_start),
          h('td', {}, w.key === null ? '' : JSON.stringify(w.key)),
          h('td', {}, JSON.stringify(w.results)),
          h('td', {}, w.closed ? 'closed' : 'open'),
        ),
      )
    previewBody.replaceChildren(
      h(
        'p',
        { id: 'preview-summary' },
        `${p.events} events · ${stages || 'pass-through'} · ${p.windows.length + p.windows_omitted} windows · ${p.dead_letters.length + p.dead_letters_omitted} dead letters${p.complete ? '' : ' · stopped at its work budget'}`,
      ),
      rows.length > 0
        ? h(
            'table',
            { id: 'preview-windows' },
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                h('th', {}, 'window start'),
                h('th', {}, 'key'),
                h('th', {}, 'results'),
                h('th', {}, 'state'),
              ),
            ),
            h('tbody', {}, ...rows),
          )
        : p.records.length > 0
          ? h(
              'pre',
              { id: 'preview-records' },
              p.records
                .slice(0, 5)
                .map((r) => JSON.stringify(r))
                .join('\n'),
            )
          : '',
    )
  }
  form.addEventListener('input', () => {
    clearTimeout(previewTimer)
    previewTimer = setTimeout(() => void showPreview(), 400)
  })
  form.addEventListener('change', () => {
    clearTimeout(previewTimer)
    previewTimer = setTimeout(() => void showPreview(), 400)
  })
  form.addEventListener('submit', (e) => {
    e.preventDefault()
    const { spec, paths } = build()
    void submit(spec, paths, general)
  })
  document.getElementById('to-json')?.addEventListener('click', () => {
    json.value = JSON.stringify(build().spec, null, 2)
    json.focus()
  })
  document.getElementById('submit-json')?.addEventListener('click', () => {
    let spec: unknown
    try {
      spec = JSON.parse(json.value)
    } catch (err) {
      clear()
      jsonErrors.append(h('li', {}, `not valid JSON: ${(err as Error).message}`))
      return
    }
    void submit(spec, [], jsonErrors)
  })
  return () => clearTimeout(previewTimer)
}
