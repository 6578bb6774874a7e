import { readFileSync } from 'node:fs'
import { isDeepStrictEqual } from 'node:util'
import type { Client, Pipeline, PipelineSpec } from '../client/client.ts'
import { UsageError } from './output.ts'

/** The parts of a pipeline that are its spec (what `apply` compares). */
const SPEC_FIELDS = [
  'name',
  'source_topic',
  'sink_topic',
  'transformation',
  'transformations',
  'start_from',
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

export type Applied = { action: 'created' | 'unchanged' | 'started'; pipeline: Pipeline }

/**
 * Creates the pipeline, or finds it by name: the same spec is a no-op (started if it asks to be),
 * another spec is refused with what differs (a running pipeline cannot be changed yet).
 */
export async function apply(client: Client, spec: PipelineSpec): Promise<Applied> {
  const { pipelines } = await client.listPipelines()
  const existing = pipelines.find((p) => p.name === spec.name)
  if (!existing) return { action: 'created', pipeline: await client.createPipeline(spec) }
  const given = spec as Record<string, unknown>
  const stored = existing as Record<string, unknown>
  const differs = SPEC_FIELDS.filter((f) => f !== 'start_from' && !isDeepStrictEqual(given[f], stored[f]))
  if (differs.length > 0)
    throw new Error(
      `pipeline '${spec.name}' exists with another ${differs.join(', ')}: changing a pipeline is not supported yet; delete it (datapulse pipelines delete ${spec.name}) and apply again`,
    )
  if (given.start === true && existing.status !== 'running')
    return { action: 'started', pipeline: await client.startPipeline(existing.id) }
  return { action: 'unchanged', pipeline: existing }
}
