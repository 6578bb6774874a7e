import { readFileSync } from 'node:fs'
import { isDeepStrictEqual } from 'node:util'
import type { Client, Pipeline, PipelineSpec } from '../client/client.ts'
import { UsageError } from './output.ts'

/** The parts of a pipeline that are its spec (what `apply` compares). */
const SPEC_FIELDS = [
  'name',
  'description',
  'source_topic',
  'sink_topic',
  'transformation',
  'transformations',
  'start_from',
  'metrics',
] as const

/** A pipeline by id or by name. */
export async function findPipeline(client: Client, idOrName: string): Promise<Pipeline> {
  const { pipelines } = await client.listPipelines()
  const found = pipelines.find((p) => p.id === idOrName) ?? pipelines.find((p) => p.name === idOrName)
  if (!found) throw new UsageError(`no pipeline has the id or name '${idOrName}' (datapulse pipelines list)`)
  return found
}

export function readSpec(file: string): PipelineSpec {
  let text: string
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8')
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`)
  }
  try {
    return JSON.parse(text) as PipelineSpec
  } catch (err) {
    throw new UsageError(`${file} is not JSON: ${(err as Error).message}`)
  }
}

export type Applied = {
  action: 'created' | 'unchanged' | 'started' | 'updated'
  pipeline: Pipeline
  /** what the update changed */
  changed?: string[]
}

/**
 * Creates the pipeline, or finds it by name: the same spec is a no-op (started if it asks to be);
 * another spec changes it in place (PUT: open windows and counters kept), unless the change would
 * lose window state, which the server refuses with what would be lost — `reset` applies it anyway.
 */
export async function apply(client: Client, spec: PipelineSpec, reset = false): Promise<Applied> {
  const { pipelines } = await client.listPipelines()
  const existing = pipelines.find((p) => p.name === spec.name)
  if (!existing) return { action: 'created', pipeline: await client.createPipeline(spec) }
  const given = spec as Record<string, unknown>
  const stored = existing as Record<string, unknown>
  const changed = SPEC_FIELDS.filter((f) => f !== 'start_from' && !isDeepStrictEqual(given[f], stored[f]))
  if (changed.length > 0) {
    const { start: _start, ...body } = given
    const updated = await client.updatePipeline(existing.id, {
      ...(body as PipelineSpec),
      ...(reset ? { reset: true } : {}),
    })
    const pipeline =
      given.start === true && updated.status !== 'running' ? await client.startPipeline(existing.id) : updated
    return { action: 'updated', pipeline, changed }
  }
  if (given.start === true && existing.status !== 'running')
    return { action: 'started', pipeline: await client.startPipeline(existing.id) }
  return { action: 'unchanged', pipeline: existing }
}
