import { apiKey, setApiKey, whenUnauthorized } from './api.ts'
import { h } from './dom.ts'
import { editor } from './pages/editor.ts'
import { lookupsPage } from './pages/lookups.ts'
import { metricsPage } from './pages/metrics.ts'
import { overview } from './pages/overview.ts'
import { pipelinePage } from './pages/pipeline.ts'

const app = document.getElementById('app') as HTMLElement
let cleanup: () => void = () => undefined

/** Hash routes: #/, #/new, #/pipelines/<id>, #/metrics, #/lookups. */
function route(): void {
  cleanup()
  app.replaceChildren()
  const hash = location.hash.replace(/^#/, '') || '/'
  const pipeline = /^\/pipelines\/([^/]+)$/.exec(hash)
  if (pipeline) cleanup = pipelinePage(app, decodeURIComponent(pipeline[1]))
  else if (hash === '/new') cleanup = editor(app)
  else if (hash === '/metrics') cleanup = metricsPage(app)
  else if (hash === '/lookups') cleanup = lookupsPage(app)
  else cleanup = overview(app)
  for (const a of document.querySelectorAll('nav a')) {
    if (a.getAttribute('href') === `#${hash}`) a.setAttribute('aria-current', 'page')
    else a.removeAttribute('aria-current')
  }
  app.focus({ preventScroll: true })
}

/** The server needs a key: ask for it once (kept for this tab only) and start the page again. */
function askForKey(message: string): void {
  if (document.getElementById('key-form')) return
  cleanup()
  cleanup = () => undefined
  const input = h('input', {
    id: 'api-key',
    type: 'password',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
    'aria-describedby': 'key-why',
  })
  const form = h(
    'form',
    { id: 'key-form', class: 'card' },
    h('h1', {}, 'API key'),
    h(
      'p',
      { id: 'key-why' },
      message,
      '. The key is kept in this tab only and sent in the Authorization header.',
    ),
    h('label', { for: 'api-key' }, 'Key'),
    input,
    h('button', { type: 'submit' }, 'Use key'),
  )
  form.addEventListener('submit', (e) => {
    e.preventDefault()
    setApiKey(input.value.trim())
    showKeyState()
    route()
  })
  app.replaceChildren(form)
  input.focus()
}

/** "Forget key" in the header while a key is set. */
function showKeyState(): void {
  document.getElementById('forget-key')?.remove()
  if (apiKey() === null) return
  const button = h('button', { id: 'forget-key', type: 'button', class: 'link' }, 'Forget key')
  button.addEventListener('click', () => {
    setApiKey(null)
    showKeyState()
    route()
  })
  document.querySelector('header')?.append(button)
}

whenUnauthorized((message) => askForKey(message))
window.addEventListener('hashchange', route)
showKeyState()
route()
