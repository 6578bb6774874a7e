import type { BenchRow } from './engine.ts'

export async function metricsBenches(_quick: boolean): Promise<BenchRow[]> {
  return []
}
