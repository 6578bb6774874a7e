import Type from 'typebox'
import { TIME_RULE } from '../../engine/events.ts'
import { parseFieldPath } from '../../engine/fields.ts'
import { eventJson, windowJson } from '../../engine/result-shape.ts'
import type { Issue } from '../../engine/types.ts'
import { type Outcome, validationError } from '../../errors.ts'
import type { PipelineView, Runtime } from '../../runtime/runtime.ts'
import { queryTime, respond, sendError } from '../reply.ts'
import { documentOnly, errors, IdParams } from '../schemas/common.ts'
import {
  EventJson,
  PipelineBody,
  type PipelineJson,
  PipelineResponse,
  PipelineUpdateBody,
  PreviewBody,
  PreviewResponse,
  ReplayBody,
  VersionsResponse,
  WindowQuerystring,
  WindowResponse,
} from '../schemas/pipelines.ts'
import type { Server } from '../server-type.ts'

const iso = (ms: number) => new Date(ms).toISOString()

export function pipelineJson(v: PipelineView): PipelineJson {
  const r = v.record
  const { replay: _saved, ...counters } = v.stats
  const replay = v.replay
  const out: PipelineJson = {
    ...r.spec,
    id: r.id,
    name: r.name,
    status: r.status,
    created_at: iso(r.createdAt),
    updated_at: iso(r.updatedAt),
    version: r.version,
    stats: {
      ...counters,
      lag: v.lag,
      pending_results: v.pendingResults,
      watermark: v.watermark === null ? null : iso(v.watermark),
      partitions: v.partitions.map((p) => ({
        ...p,
        watermark: p.watermark === null ? null : iso(p.watermark),
      })),
      condition: v.degraded === undefined ? 'ok' : 'degraded',
      ...(v.degraded === undefined ? {} : { condition_reason: v.degraded }),
      ...(replay === undefined
        ? {}
        : {
            replay: {
              from: replay.from,
              state: replay.finishedAt === null ? ('replaying' as const) : ('done' as const),
              recomputes_from: replay.cut === null ? null : iso(replay.cut),
              started_at: iso(replay.startedAt),
              finished_at: replay.finishedAt === null ? null : iso(replay.finishedAt),
              start: replay.start,
              position: replay.position,
              target: replay.target,
              skipped: replay.skipped,
              events_per_second: replay.eventsPerSecond,
            },
          }),
    },
  }
  if (v.failure !== undefined) out.status_reason = v.failure
  return out
}

export function pipelineRoutes(app: Server, runtime: Runtime): void {
  app.post(
    '/api/pipelines',
    {
      schema: {
        operationId: 'createPipeline',
        summary: 'Create a pipeline ("start": true starts it)',
        tags: ['pipelines'],
        body: PipelineBody,
        response: { 201: PipelineResponse, ...errors(400, 409, 413, 415) },
      },
      validatorCompiler: documentOnly,
      config: { role: 'admin' },
    },
    async (request, reply) => respond(reply, await runtime.createPipeline(request.body), pipelineJson, 201),
  )

  app.post(
    '/api/pipelines/preview',
    {
      schema: {
        operationId: 'previewPipeline',
        summary: "Run a spec over given events or a topic's newest ones; nothing is saved",
        tags: ['pipelines'],
        body: PreviewBody,
        response: { 200: PreviewResponse, ...errors(400, 413, 415) },
      },
      validatorCompiler: documentOnly,
      config: { role: 'admin' },
    },
    async (request, reply) =>
      respond(reply, await runtime.previewPipeline(request.body), (r) => ({
        complete: r.complete,
        events: r.events,
        watermark: r.watermark === null ? null : iso(r.watermark),
        stages: r.stages,
        windows: r.windows.map(windowJson),
        windows_omitted: r.windowsOmitted,
        records: r.records.map(eventJson),
        records_omitted: r.recordsOmitted,
        dead_letters: r.deadLetters.map((d) => ({
          reason: d.reason,
          detail: d.detail,
          event: eventJson(d.event),
        })),
        dead_letters_omitted: r.deadLettersOmitted,
      })),
  )

  app.get(
    '/api/pipelines',
    {
      schema: {
        operationId: 'listPipelines',
        summary: 'List pipelines',
        tags: ['pipelines'],
        response: { 200: Type.Object({ pipelines: Type.Array(PipelineResponse) }) },
      },
      config: { role: 'read' },
    },
    async () => ({ pipelines: runtime.listPipelines().map(pipelineJson) }),
  )

  app.get(
    '/api/pipelines/:id',
    {
      schema: {
        operationId: 'getPipeline',
        summary: 'One pipeline with its status and counters',
        tags: ['pipelines'],
        params: IdParams,
        response: { 200: PipelineResponse, ...errors(404) },
      },
      config: { role: 'read' },
    },
    async (request, reply) =>
      respond(reply, runtime.getPipeline((request.params as { id: string }).id), pipelineJson),
  )

  app.put(
    '/api/pipelines/:id',
    {
      schema: {
        operationId: 'updatePipeline',
        summary:
          'Change a pipeline\'s spec: kept window state when its meaning stays, else 409 with what would be lost ("reset": true drops it)',
        tags: ['pipelines'],
        params: IdParams,
        body: PipelineUpdateBody,
        response: { 200: PipelineResponse, ...errors(400, 404, 409, 413, 415) },
      },
      validatorCompiler: documentOnly,
      config: { role: 'admin' },
    },
    async (request, reply) =>
      respond(
        reply,
        await runtime.updatePipeline((request.params as { id: string }).id, request.body),
        pipelineJson,
      ),
  )

  app.get(
    '/api/pipelines/:id/versions',
    {
      schema: {
        operationId: 'listPipelineVersions',
        summary: 'Every version of the spec, oldest first',
        tags: ['pipelines'],
        params: IdParams,
        response: { 200: VersionsResponse, ...errors(404) },
      },
      config: { role: 'read' },
    },
    async (request, reply) => {
      const { id } = request.params as { id: string }
      return respond(reply, await runtime.listVersions(id), (versions) => ({
        pipeline_id: id,
        versions: versions.map((v) => ({
          version: v.version,
          spec: v.spec,
          created_at: iso(v.createdAt),
          reset: v.reset,
        })),
      }))
    },
  )

  app.post(
    '/api/pipelines/:id/replay',
    {
      schema: {
        operationId: 'replayPipeline',
        summary:
          'Recompute from a point of the source topic ("earliest", an RFC 3339 time or an offset): its windows are replaced, then it runs live',
        tags: ['pipelines'],
        params: IdParams,
        body: ReplayBody,
        response: { 200: PipelineResponse, ...errors(400, 404, 409, 413, 415, 503) },
      },
      validatorCompiler: documentOnly,
      config: { role: 'admin' },
    },
    async (request, reply) =>
      respond(
        reply,
        await runtime.replayPipeline((request.params as { id: string }).id, request.body),
        pipelineJson,
      ),
  )

  const lifecycle = (action: 'start' | 'stop', run: (id: string) => Promise<Outcome<PipelineView>>) =>
    app.post(
      `/api/pipelines/:id/${action}`,
      {
        schema: {
          operationId: action === 'start' ? 'startPipeline' : 'stopPipeline',
          summary: action === 'start' ? 'Start (idempotent)' : 'Stop (idempotent; window state is kept)',
          tags: ['pipelines'],
          params: IdParams,
          response: { 200: PipelineResponse, ...errors(404) },
        },
        config: { role: 'admin' },
      },
      async (request, reply) =>
        respond(reply, await run((request.params as { id: string }).id), pipelineJson),
    )
  lifecycle('start', (id) => runtime.startPipeline(id))
  lifecycle('stop', (id) => runtime.stopPipeline(id))

  app.delete(
    '/api/pipelines/:id',
    {
      schema: {
        operationId: 'deletePipeline',
        summary: 'Delete a pipeline and its state',
        tags: ['pipelines'],
        params: IdParams,
        response: { 204: Type.Null(), ...errors(404) },
      },
      config: { role: 'admin' },
    },
    async (request, reply) => {
      const outcome = await runtime.deletePipeline((request.params as { id: string }).id)
      if (!outcome.ok) return sendError(reply, outcome.error)
      return reply.code(204).send(null)
    },
  )

  app.get(
    '/api/pipelines/:id/window',
    {
      schema: {
        operationId: 'getWindows',
        summary: 'Window results, newest first: open (partial) and closed',
        tags: ['pipelines'],
        params: IdParams,
        querystring: WindowQuerystring,
        response: { 200: WindowResponse, ...errors(400, 404) },
      },
      config: { role: 'read' },
    },
    async (request, reply) => {
      const { id } = request.params as { id: string }
      const q = request.query as Record<string, string | number | undefined>
      const from = queryTime(q.from as string | undefined)
      const to = queryTime(q.to as string | undefined)
      if (from === null || to === null)
        return sendError(
          reply,
          validationError([
            { path: from === null ? '/querystring/from' : '/querystring/to', message: TIME_RULE },
          ]),
        )
      const key: Record<string, string> = Object.create(null)
      const keyIssues: Issue[] = []
      for (const [k, v] of Object.entries(q)) {
        if (!k.startsWith('key.')) continue
        const path = parseFieldPath(k.slice(4))
        if (!path.ok || typeof v !== 'string')
          keyIssues.push({
            path: `/querystring/${k}`,
            message: path.ok ? 'must be given once' : `is not a group key path: ${path.issues[0].message}`,
          })
        else key[k.slice(4)] = v
      }
      if (keyIssues.length > 0) return sendError(reply, validationError(keyIssues))
      const outcome = await runtime.windows(id, {
        state: (q.state as 'open' | 'closed' | 'all' | undefined) ?? 'all',
        from,
        to,
        limit: (q.limit as number | undefined) ?? 1_000,
        key,
      })
      return respond(reply, outcome, (windows) => ({ pipeline_id: id, windows: windows.map(windowJson) }))
    },
  )

  app.get(
    '/api/pipelines/:id/dead-letters',
    {
      schema: {
        operationId: 'getDeadLetters',
        summary: 'Events a stage could not process, and late events; newest first',
        tags: ['pipelines'],
        params: IdParams,
        querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })) }),
        response: {
          200: Type.Object({
            pipeline_id: Type.String(),
            dead_letters: Type.Array(
              Type.Object({
                reason: Type.String(),
                detail: Type.String(),
                at: Type.String(),
                event: EventJson,
              }),
            ),
          }),
          ...errors(404),
        },
      },
      config: { role: 'read' },
    },
    async (request, reply) => {
      const { id } = request.params as { id: string }
      const limit = (request.query as { limit?: number }).limit ?? 100
      const outcome = await runtime.deadLetters(id, limit)
      return respond(reply, outcome, (items) => ({
        pipeline_id: id,
        dead_letters: items.map((d) => ({
          reason: d.reason,
          detail: d.detail,
          at: iso(d.at),
          event: eventJson(d.event),
        })),
      }))
    },
  )
}
