import Type from 'typebox'
import { eventJson, windowJson } from '../../engine/result-shape.ts'
import { AppError } from '../../errors.ts'
import type { Runtime } from '../../runtime/runtime.ts'
import { sendError } from '../reply.ts'
import type { Server } from '../server-type.ts'
import { pipelineJson } from './pipelines.ts'

const INTERVAL_MS = 1_000
/** Bytes a stream may have unsent (a client that does not read): past it the stream is dropped. */
const MAX_BUFFERED_BYTES = 1024 * 1024

/**
 * Server-Sent Events for the dashboard: every second a `stats` event (ingest rate, pipelines with
 * counters and lag) and, with `?pipeline=<id>`, a `windows` event (the newest 500 windows, found
 * through the window index) and a `dead_letters` event (the newest 50), each only when it changed.
 * The server pushes; nothing polls.
 */
export function streamRoutes(app: Server, runtime: Runtime): void {
  // open streams end when the server closes (they would hold it open)
  const open = new Set<() => void>()
  app.addHook('preClose', async () => {
    for (const close of [...open]) close()
  })
  app.get(
    '/api/stream',
    {
      schema: {
        operationId: 'stream',
        summary: 'Live updates as Server-Sent Events (stats; windows and dead letters of ?pipeline=)',
        tags: ['health'],
        querystring: Type.Object({ pipeline: Type.Optional(Type.String({ maxLength: 128 })) }),
      },
      config: { role: 'read' },
    },
    (request, reply) => {
      const pipelineId = (request.query as { pipeline?: string }).pipeline
      if (open.size >= runtime.config.maxStreams)
        return sendError(
          reply,
          new AppError('unavailable', `at most ${runtime.config.maxStreams} streams are open at once`, [], 5),
        )
      reply.hijack()
      const res = reply.raw
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      })
      // windows and dead letters go out when they changed, not every second
      const lastSent = new Map<string, string>()
      const sendChanged = (event: string, data: unknown) => {
        const text = JSON.stringify(data)
        if (lastSent.get(event) === text) return
        lastSent.set(event, text)
        send(event, text)
      }
      // a reader that falls behind is dropped, not buffered for: memory per stream stays bounded
      const send = (event: string, data: unknown) => {
        if (res.writableLength > MAX_BUFFERED_BYTES) {
          request.log.warn({ buffered: res.writableLength }, 'stream reader fell behind; dropping it')
          res.destroy()
          close()
          return
        }
        res.write(`event: ${event}\ndata: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`)
      }
      let busy = false
      const tick = async () => {
        if (busy) return
        busy = true
        try {
          if (!open.has(close)) return
          // a key deleted or expired while its stream is open ends the stream
          if (request.apiKey && !runtime.keys.isValid(request.apiKey.id, runtime.clock())) return close()
          send('stats', {
            at: new Date(runtime.clock()).toISOString(),
            ingested_total: runtime.ingested,
            per_second: runtime.ingestRate.perSecond(),
            pipelines: runtime.listPipelines().map(pipelineJson),
          })
          if (pipelineId && open.has(close)) {
            const windows = await runtime.windows(pipelineId, { state: 'all', limit: 500 })
            if (windows.ok) sendChanged('windows', windows.value.map(windowJson))
            const dead = await runtime.deadLetters(pipelineId, 50)
            if (dead.ok)
              sendChanged(
                'dead_letters',
                dead.value.map((d) => ({
                  reason: d.reason,
                  detail: d.detail,
                  at: new Date(d.at).toISOString(),
                  event: eventJson(d.event),
                })),
              )
          }
        } catch (err) {
          request.log.warn({ err }, 'stream update failed')
        } finally {
          busy = false
        }
      }
      const timer = setInterval(() => void tick(), INTERVAL_MS)
      void tick()
      function close() {
        clearInterval(timer)
        open.delete(close)
        if (!res.destroyed) res.end()
      }
      open.add(close)
      request.raw.on('close', close)
    },
  )
}
