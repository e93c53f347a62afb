// The outlines of Anhui's cities and counties as SVG paths (GET /console/data/anhui_divisions.json:
// simplified, projected and gzipped by the server, ~25 KB, fetched once per page load).

export interface DivisionShape {
  code: string
  name: string
  level: 'city' | 'county'
  parent: string
  box: [number, number, number, number] // x, y, width, height on the map's plane: an SVG viewBox
  d: string
}
export interface DivisionShapes {
  province: { code: string; name: string; box: [number, number, number, number] }
  divisions: DivisionShape[]
}

let load: Promise<DivisionShapes> | null = null

/** Fetch the outlines once; later calls share the answer. */
export function loadDivisionShapes(): Promise<DivisionShapes> {
  load ??= fetch('/console/data/anhui_divisions.json')
    .then((r) => {
      if (!r.ok) throw new Error(`division outlines: HTTP ${r.status}`)
      return r.json() as Promise<DivisionShapes>
    })
    .catch((e: unknown) => {
      load = null // a later visit may try again
      throw e
    })
  return load
}

/** What the map draws for a division: its children's outlines where the data has them, else its own. */
export function shapesFor(
  shapes: DivisionShapes,
  code: string,
  level: string,
): { drawn: DivisionShape[]; box: [number, number, number, number]; childrenDrawn: boolean } {
  const byCode = new Map(shapes.divisions.map((s) => [s.code, s]))
  if (level === 'province') {
    return { drawn: shapes.divisions.filter((s) => s.level === 'city'), box: shapes.province.box, childrenDrawn: true }
  }
  if (level === 'city') {
    const own = byCode.get(code)
    const drawn = shapes.divisions.filter((s) => s.level === 'county' && s.parent === code)
    return { drawn, box: own?.box ?? shapes.province.box, childrenDrawn: true }
  }
  // A county (or a township, drawn as its county): no township polygons exist, so the county alone.
  const own = byCode.get(code.slice(0, 6))
  return { drawn: own ? [own] : [], box: own?.box ?? shapes.province.box, childrenDrawn: false }
}

/** A box grown by a margin on every side, as an SVG viewBox string. */
export function viewBox([x, y, w, h]: [number, number, number, number], margin = 0.03): string {
  const m = Math.max(w, h) * margin
  return `${x - m} ${y - m} ${w + 2 * m} ${h + 2 * m}`
}

export interface Bin { key: string; label: string; color: string }

// Progress against the target (actual / target): five steps, met in green; grey where there is no figure.
export const PROGRESS_BINS: Bin[] = [
  { key: 'p0', label: '< 25%', color: '#f4c7b8' },
  { key: 'p25', label: '25–50%', color: '#f0a37f' },
  { key: 'p50', label: '50–75%', color: '#f6d365' },
  { key: 'p75', label: '75–100%', color: '#b5d98b' },
  { key: 'met', label: '≥ 100% 达标', color: '#3a9a5b' },
]
export const NO_DATA: Bin = { key: 'none', label: '暂无数据 No figure', color: '#dcdfe6' }
// Without a target for the divisions (a province-wide total): shades of the figure, of the largest one.
export const AMOUNT_BINS: Bin[] = [
  { key: 'a0', label: '', color: '#deebf7' },
  { key: 'a1', label: '', color: '#9ecae1' },
  { key: 'a2', label: '', color: '#4292c6' },
  { key: 'a3', label: '', color: '#08519c' },
]

/** Pure: the legend bin of one division's figure. */
export function binOf(
  figure: { progress?: number | null; actual?: number | null; available?: boolean } | undefined,
  byProgress: boolean,
  largest: number,
): Bin {
  if (!figure || !figure.available || figure.actual === null || figure.actual === undefined) return NO_DATA
  if (byProgress) {
    const p = figure.progress
    if (p === null || p === undefined) return NO_DATA
    if (p >= 1) return PROGRESS_BINS[4]
    return PROGRESS_BINS[Math.min(3, Math.floor(p * 4))]
  }
  if (largest <= 0) return AMOUNT_BINS[0]
  return AMOUNT_BINS[Math.min(3, Math.floor((figure.actual / largest) * 4))]
}
