/**
 * `npm run bench [-- --quick] [-- --only engine,memory,http,metrics,store,window,kafka,cluster,overload,peers] [-- --peers]`: every bench beside its
 * ceiling from the same run; prints a table and writes JSON under bench/results/.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { parseArgs } from 'node:util'
import { clusterBenches } from './cluster.ts'
import { type BenchRow, engineBenches } from './engine.ts'
import { httpBenches } from './http.ts'
import { kafkaBenches } from './kafka.ts'
import { metricsBenches } from './metrics.ts'
import { overloadBenches } from './overload.ts'
import { peerBenches } from './peers.ts'
import { soak } from './soak.ts'
import { storeBenches } from './store.ts'
import { windowBenches } from './window-query.ts'

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    soak: { type: 'string' },
    /** Kafka Streams and Flink beside DataPulse (needs java and mvn) */
    peers: { type: 'boolean', default: false },
  },
})
const quick = values.quick ?? false
const only = values.only ? new Set(values.only.split(',')) : undefined
const wanted = (name: string) => !only || only.has(name)

function memoryBench(): BenchRow[] {
  const keys = 1_000_000
  const out = execFileSync(
    process.execPath,
    ['--expose-gc', new URL('./memory-child.ts', import.meta.url).pathname, String(keys)],
    {
      encoding: 'utf8',
    },
  )
  const { rss, rssBefore } = JSON.parse(out.trim().split('\n').pop() as string)
  return [
    {
      bench: 'memory: RSS with 1M live window keys (count + sum)',
      value: rss / 2 ** 20,
      unit: 'MB',
      ceiling: rssBefore / 2 ** 20,
      ceilingName: 'RSS of the same process before any state',
      target: '<= 400 MB',
      ok: rss / 2 ** 20 <= 400,
    },
  ]
}

if (values.soak) {
  const seconds = Number(values.soak)
  if (!Number.isFinite(seconds) || seconds < 30)
    throw new Error('--soak takes a number of seconds (at least 30)')
  process.exit((await soak(seconds)) ? 0 : 1)
}

const rows: BenchRow[] = []
const started = Date.now()
if (wanted('engine')) rows.push(...engineBenches(quick))
if (wanted('memory')) rows.push(...memoryBench())
if (wanted('http')) rows.push(...(await httpBenches(quick)))
if (wanted('metrics')) rows.push(...(await metricsBenches(quick)))
if (wanted('store')) rows.push(...(await storeBenches(quick)))
if (wanted('window')) rows.push(...(await windowBenches(quick)))
if (wanted('kafka')) rows.push(...(await kafkaBenches(quick)))
if (wanted('cluster')) rows.push(...(await clusterBenches(quick)))
if (wanted('overload')) rows.push(...(await overloadBenches(quick)))
if (values.peers || only?.has('peers')) rows.push(...(await peerBenches(quick)))

const fmt = (v: number, unit: string) =>
  unit === 'events/s' || unit === 'points/s'
    ? v < 1e6
      ? `${(v / 1e3).toFixed(0)}k`
      : `${(v / 1e6).toFixed(2)}M`
    : unit === 'x'
      ? v.toFixed(2)
      : unit === 'ms' || unit === 's'
        ? v.toFixed(1)
        : v.toFixed(0)
const lines = [
  `DataPulse bench — ${new Date().toISOString()} — ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}${quick ? ' — quick' : ''}`,
  '',
  '| bench | result | ceiling (same run) | ratio | target | met |',
  '| --- | --- | --- | --- | --- | --- |',
  ...rows.map((r) => {
    const ratio = r.ceiling ? (r.value / r.ceiling).toFixed(2) : ''
    const ceiling = r.ceiling ? `${fmt(r.ceiling, r.unit)} ${r.unit} (${r.ceilingName})` : ''
    return `| ${r.bench} | ${fmt(r.value, r.unit)} ${r.unit} | ${ceiling} | ${ratio} | ${r.target ?? ''} | ${r.ok === undefined ? '' : r.ok ? 'yes' : 'no'} |`
  }),
]
console.log(lines.join('\n'))
console.log(`\n(${((Date.now() - started) / 1000).toFixed(0)} s)`)
const dir = new URL('./results/', import.meta.url).pathname
mkdirSync(dir, { recursive: true })
const stamp = new Date().toISOString().replaceAll(':', '-')
writeFileSync(`${dir}/${stamp}${quick ? '-quick' : ''}.json`, `${JSON.stringify({ quick, rows }, null, 2)}\n`)
writeFileSync(`${dir}/latest${quick ? '-quick' : ''}.md`, `${lines.join('\n')}\n`)
