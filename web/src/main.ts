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

window.addEventListener('hashchange', route)
route()
