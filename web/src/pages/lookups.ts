import { api } from '../api.ts'
import { h } from '../dom.ts'

interface TableInfo {
  name: string
  key: string
  rows: number
  updated_at: string
}

/** Lookup tables: upload CSV or JSON rows, list tables, browse and search rows. */
export function lookupsPage(root: HTMLElement): () => void {
  const tablesBody = h('tbody')
  const name = h('input', { id: 'l-name', type: 'text', placeholder: 'users', required: true })
  const key = h('input', { id: 'l-key', type: 'text', placeholder: 'id', required: true })
  const file = h('input', { id: 'l-file', type: 'file', accept: '.csv,.json,text/csv,application/json' })
  const pasted = h('textarea', {
    id: 'l-text',
    'aria-label': 'Rows as CSV (with a header line) or a JSON array',
    placeholder: 'id,name\n1,Ada',
  })
  const message = h('p', { role: 'alert' })
  const browseTable = h('select', { id: 'l-browse' })
  const search = h('input', { id: 'l-q', type: 'search', placeholder: 'search rows' })
  const rowsEl = h('div', { class: 'rows' })
  const upload = h(
    'form',
    { 'aria-label': 'Upload a lookup table' },
    h(
      'div',
      { class: 'row' },
      h('label', { for: 'l-name' }, 'Table', name),
      h('label', { for: 'l-key' }, 'Key field', key),
      h('label', { for: 'l-file' }, 'File (CSV or JSON)', file),
    ),
    pasted,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Upload (replaces the table)')),
  )
  root.append(
    h('h1', {}, 'Lookup tables'),
    h('section', { class: 'card' }, h('h2', {}, 'Upload'), upload, message),
    h(
      'section',
      { class: 'card' },
      h('h2', {}, 'Tables'),
      h(
        'table',
        { 'aria-label': 'Lookup tables' },
        h(
          'thead',
          {},
          h('tr', {}, ...['Name', 'Key', 'Rows', 'Updated'].map((c) => h('th', { scope: 'col' }, c))),
        ),
        tablesBody,
      ),
    ),
    h(
      'section',
      { class: 'card' },
      h('h2', {}, 'Browse'),
      h(
        'div',
        { class: 'row' },
        h('label', { for: 'l-browse' }, 'Table', browseTable),
        h('label', { for: 'l-q' }, 'Search', search),
      ),
      rowsEl,
    ),
  )
  const refresh = async () => {
    const r = await api<{ tables: TableInfo[] }>('GET', '/api/lookups')
    if (!r.ok) return
    tablesBody.replaceChildren(
      ...r.value.tables.map((t) =>
        h(
          'tr',
          {},
          h('td', {}, t.name),
          h('td', {}, t.key),
          h('td', { class: 'num' }, t.rows),
          h('td', {}, t.updated_at),
        ),
      ),
    )
    const current = browseTable.value
    browseTable.replaceChildren(...r.value.tables.map((t) => h('option', { value: t.name }, t.name)))
    if (current) browseTable.value = current
    await browse()
  }
  const browse = async () => {
    if (!browseTable.value) return rowsEl.replaceChildren(h('p', { class: 'muted' }, 'No tables yet.'))
    const r = await api<{ total: number; rows: Array<Record<string, unknown>> }>(
      'GET',
      `/api/lookups/${encodeURIComponent(browseTable.value)}?limit=100&q=${encodeURIComponent(search.value)}`,
    )
    if (!r.ok) return rowsEl.replaceChildren(h('p', { class: 'errors' }, r.error.message))
    const columns = [...new Set(r.value.rows.flatMap((row) => Object.keys(row)))]
    rowsEl.replaceChildren(
      h('p', { class: 'muted' }, `${r.value.total} matching rows`),
      h(
        'table',
        { 'aria-label': 'Rows' },
        h('thead', {}, h('tr', {}, ...columns.map((c) => h('th', { scope: 'col' }, c)))),
        h(
          'tbody',
          {},
          ...r.value.rows.map((row) =>
            h(
              'tr',
              {},
              ...columns.map((c) =>
                h('td', {}, typeof row[c] === 'object' ? JSON.stringify(row[c]) : String(row[c] ?? '')),
              ),
            ),
          ),
        ),
      ),
    )
  }
  upload.addEventListener('submit', async (e) => {
    e.preventDefault()
    message.className = ''
    const content = file.files?.[0] ? await file.files[0].text() : pasted.value
    const isJson = content.trim().startsWith('[') || content.trim().startsWith('{')
    let r: Awaited<ReturnType<typeof api>>
    if (isJson) {
      let rows: unknown
      try {
        rows = JSON.parse(content)
      } catch (err) {
        message.className = 'errors'
        message.textContent = `not valid JSON: ${(err as Error).message}`
        return
      }
      r = await api('PUT', `/api/lookups/${encodeURIComponent(name.value)}`, {
        key: key.value,
        rows: Array.isArray(rows) ? rows : (rows as { rows: unknown }).rows,
      })
    } else
      r = await api(
        'PUT',
        `/api/lookups/${encodeURIComponent(name.value)}?key=${encodeURIComponent(key.value)}`,
        content,
        'text/csv',
      )
    if (r.ok) {
      message.textContent = `Uploaded ${name.value}.`
      browseTable.value = name.value
      await refresh()
      browseTable.value = name.value
      await browse()
    } else {
      message.className = 'errors'
      message.textContent = [
        r.error.message,
        ...r.error.details.slice(1).map((d) => `${d.path} ${d.message}`),
      ].join('; ')
    }
  })
  browseTable.addEventListener('change', () => void browse())
  search.addEventListener('input', () => void browse())
  void refresh()
  return () => undefined
}
