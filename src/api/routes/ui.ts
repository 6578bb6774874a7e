import { readFileSync } from 'node:fs'
import type { Server } from '../server-type.ts'

const WEB = new URL('../../../web/', import.meta.url).pathname
const ASSETS: Record<string, { file: string; type: string }> = {
  'app.js': { file: 'dist/app.js', type: 'text/javascript; charset=utf-8' },
  'app.js.map': { file: 'dist/app.js.map', type: 'application/json' },
  'uplot.css': { file: 'dist/uplot.css', type: 'text/css; charset=utf-8' },
  'styles.css': { file: 'styles.css', type: 'text/css; charset=utf-8' },
  'favicon.svg': { file: 'favicon.svg', type: 'image/svg+xml' },
}

/** The dashboard, served by the engine itself: /ui and its assets (built by scripts/build-web.ts). */
export function uiRoutes(app: Server): void {
  const read = (file: string): Buffer | undefined => {
    try {
      return readFileSync(WEB + file)
    } catch {
      return undefined
    }
  }
  app.get('/ui', { schema: { hide: true }, config: { role: 'public' } }, async (_request, reply) => {
    const html = read('index.html')
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(html)
  })
  app.get<{ Params: { name: string } }>(
    '/ui/assets/:name',
    { schema: { hide: true }, config: { role: 'public' } },
    async (request, reply) => {
      const asset = ASSETS[request.params.name]
      const body = asset && read(asset.file)
      if (!asset || !body)
        return reply.code(404).send({
          error: {
            code: 'not_found',
            message: asset
              ? `${request.params.name} is not built: run npm install (or node scripts/build-web.ts)`
              : 'no such asset',
          },
        })
      return reply.type(asset.type).header('cache-control', 'no-cache').send(body)
    },
  )
}
