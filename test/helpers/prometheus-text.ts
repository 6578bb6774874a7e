/**
 * A strict parser of the Prometheus text exposition format (0.0.4): HELP and TYPE lines, samples
 * with escaped label values, numeric values. Throws on anything malformed.
 */
export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

export interface Family {
  name: string
  type: string
  help: string
  samples: Sample[]
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const SUFFIXES = ['_bucket', '_count', '_sum', '_total', '_created']

function parseValue(raw: string, line: number): number {
  if (raw === '+Inf') return Number.POSITIVE_INFINITY
  if (raw === '-Inf') return Number.NEGATIVE_INFINITY
  if (raw === 'NaN') return Number.NaN
  const v = Number(raw)
  if (raw === '' || Number.isNaN(v)) throw new Error(`line ${line}: bad value '${raw}'`)
  return v
}

function parseLabels(text: string, line: number): Record<string, string> {
  const labels: Record<string, string> = {}
  let i = 0
  while (i < text.length) {
    const eq = text.indexOf('=', i)
    const name = text.slice(i, eq)
    if (eq < 0 || !/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(name))
      throw new Error(`line ${line}: bad label name '${name}'`)
    if (text[eq + 1] !== '"') throw new Error(`line ${line}: label value must be quoted`)
    let j = eq + 2
    let value = ''
    for (; j < text.length && text[j] !== '"'; j++) {
      if (text[j] === '\\') {
        const next = text[++j]
        value += next === 'n' ? '\n' : next
      } else value += text[j]
    }
    if (text[j] !== '"') throw new Error(`line ${line}: unterminated label value`)
    labels[name] = value
    i = j + 1
    if (text[i] === ',') i++
  }
  return labels
}

export function parsePrometheusText(text: string): Map<string, Family> {
  const families = new Map<string, Family>()
  const family = (name: string) => {
    const existing = families.get(name)
    if (existing) return existing
    const created: Family = { name, type: 'untyped', help: '', samples: [] }
    families.set(name, created)
    return created
  }
  text.split('\n').forEach((raw, index) => {
    const line = index + 1
    if (raw.trim() === '') return
    if (raw.startsWith('# HELP ') || raw.startsWith('# TYPE ')) {
      const [, kind, name, ...rest] = raw.split(' ')
      if (!NAME.test(name)) throw new Error(`line ${line}: bad metric name '${name}'`)
      const f = family(name)
      if (kind === 'HELP') f.help = rest.join(' ')
      else {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest[0]))
          throw new Error(`line ${line}: bad type`)
        if (f.samples.length > 0) throw new Error(`line ${line}: TYPE after samples of ${name}`)
        f.type = rest[0]
      }
      return
    }
    if (raw.startsWith('#')) return
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( -?\d+)?$/.exec(raw)
    if (!m) throw new Error(`line ${line}: not a sample: ${raw}`)
    const [, name, , labelText, value] = m
    const base = SUFFIXES.reduce(
      (n, s) => (n.endsWith(s) && families.has(n.slice(0, -s.length)) ? n.slice(0, -s.length) : n),
      name,
    )
    const f = families.get(base) ?? families.get(name)
    if (!f) throw new Error(`line ${line}: sample of undeclared metric ${name}`)
    f.samples.push({
      name,
      labels: labelText ? parseLabels(labelText, line) : {},
      value: parseValue(value, line),
    })
  })
  for (const f of families.values()) {
    if (f.type !== 'histogram') continue
    const buckets = f.samples.filter((s) => s.name === `${f.name}_bucket`)
    const byLabels = new Map<string, Sample[]>()
    for (const b of buckets) {
      const { le, ...rest } = b.labels
      const key = JSON.stringify(rest)
      byLabels.set(key, [...(byLabels.get(key) ?? []), b])
      if (le === undefined) throw new Error(`${f.name}: bucket without le`)
    }
    for (const [key, list] of byLabels) {
      for (let i = 1; i < list.length; i++)
        if (list[i].value < list[i - 1].value) throw new Error(`${f.name}${key}: buckets not cumulative`)
      const inf = list.find((b) => b.labels.le === '+Inf')
      const count = f.samples.find((s) => s.name === `${f.name}_count` && JSON.stringify(s.labels) === key)
      if (!inf || !count || inf.value !== count.value)
        throw new Error(`${f.name}${key}: +Inf bucket must equal _count`)
    }
  }
  return families
}
