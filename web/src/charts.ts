import uPlot from 'uplot'

const COLORS = ['#2459c9', '#d9480f', '#2b8a3e', '#862e9c', '#c92a2a', '#1098ad', '#e67700', '#5c940d']

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
    const pad = max > min ? (max - min) * 0.03 : 3600
    return [min - pad, max + pad]
  }

  /** Draws `series` (name → values aligned with `xs`); rebuilds only when the series change. */
  set(xs: number[], series: Array<{ name: string; values: Array<number | null> }>): void {
    this.#xs = xs
    const names = series.map((s) => s.name)
    const data = [xs, ...series.map((s) => s.values)] as uPlot.AlignedData
    if (this.#plot && names.join('\u0000') === this.#names.join('\u0000')) {
      this.#plot.setData(data)
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
            label: s.name,
            stroke: COLORS[i % COLORS.length],
            width: 2,
            spanGaps: true,
          })),
        ],
        axes: [{}, { size: 60 }],
        // the x range follows the data (one point in time gets an hour either side)
        scales: { x: { time: true, range: () => this.#range() } },
      },
      data,
      this.#el,
    )
  }

  destroy(): void {
    window.removeEventListener('resize', this.#onResize)
    this.#plot?.destroy()
  }
}
