import uPlot from 'uplot'

const COLORS = ['#2459c9', '#d9480f', '#2b8a3e', '#862e9c', '#c92a2a', '#1098ad', '#e67700', '#5c940d']
/** Legend labels longer than this are cut (the whole name shows on hover). */
const LABEL_MAX = 32

/** The index of the last value that is not null, per series (the legend shows it while not hovering). */
function lastValues(data: uPlot.AlignedData): Array<number | null> {
  return data.map((values) => {
    for (let i = values.length - 1; i >= 0; i--) if (values[i] !== null && values[i] !== undefined) return i
    return null
  })
}

/** A time-series line chart (x in epoch seconds) that follows its container's width. */
export class LineChart {
  readonly #el: HTMLElement
  #plot: uPlot | undefined
  #names: string[] = []
  readonly #onResize = () => this.#plot?.setSize({ width: this.#width(), height: 240 })

  constructor(el: HTMLElement) {
    this.#el = el
    window.addEventListener('resize', this.#onResize)
  }

  #width(): number {
    return Math.max(240, this.#el.clientWidth || 600)
  }

  #xs: number[] = []

  #range(): uPlot.Range.MinMax {
    const min = this.#xs[0] ?? 0
    const max = this.#xs[this.#xs.length - 1] ?? 0
    // scoped to where the data is; one point in time gets a minute either side
    const pad = max > min ? (max - min) * 0.03 : 60
    return [min - pad, max + pad]
  }

  /** Draws `series` (name → values aligned with `xs`); rebuilds only when the series change. */
  set(xs: number[], series: Array<{ name: string; values: Array<number | null> }>): void {
    this.#xs = xs
    const names = series.map((s) => s.name)
    const data = [xs, ...series.map((s) => s.values)] as uPlot.AlignedData
    if (this.#plot && names.join('\u0000') === this.#names.join('\u0000')) {
      this.#plot.setData(data)
      this.#showLatest(this.#plot)
      return
    }
    this.#plot?.destroy()
    this.#names = names
    this.#plot = new uPlot(
      {
        width: this.#width(),
        height: 240,
        series: [
          {},
          ...series.map((s, i) => ({
            label: s.name.length > LABEL_MAX ? `${s.name.slice(0, LABEL_MAX - 1)}…` : s.name,
            stroke: COLORS[i % COLORS.length],
            width: 2,
            spanGaps: true,
          })),
        ],
        axes: [{}, { size: 60 }],
        // the x range follows the data (one point in time gets an hour either side)
        scales: { x: { time: true, range: () => this.#range() } },
        // without the pointer over the chart, the legend shows each series' latest value
        hooks: { setLegend: [(u) => this.#showLatest(u)] },
      },
      data,
      this.#el,
    )
    const labels = this.#el.querySelectorAll('.u-legend .u-series .u-label')
    // the first is the time column
    names.forEach((name, i) => {
      labels[i + 1]?.setAttribute('title', name)
    })
    this.#showLatest(this.#plot)
  }

  #showLatest(u: uPlot): void {
    if (u.cursor.idx !== null && u.cursor.idx !== undefined) return
    u.setLegend({ idxs: lastValues(u.data) }, false)
  }

  destroy(): void {
    window.removeEventListener('resize', this.#onResize)
    this.#plot?.destroy()
  }
}
