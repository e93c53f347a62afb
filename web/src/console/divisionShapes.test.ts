import { describe, expect, it } from 'vitest'
import { AMOUNT_BINS, NO_DATA, PROGRESS_BINS, binOf, shapesFor, viewBox, type DivisionShapes } from './divisionShapes'

describe('binOf', () => {
  it('puts progress into quarters, met at 100% and over, grey without a figure', () => {
    expect(binOf({ progress: 0.1, actual: 1, available: true }, true, 0)).toBe(PROGRESS_BINS[0])
    expect(binOf({ progress: 0.5, actual: 1, available: true }, true, 0)).toBe(PROGRESS_BINS[2])
    expect(binOf({ progress: 0.99, actual: 1, available: true }, true, 0)).toBe(PROGRESS_BINS[3])
    expect(binOf({ progress: 2, actual: 2, available: true }, true, 0).key).toBe('met')
    expect(binOf({ progress: null, actual: null, available: false }, true, 0)).toBe(NO_DATA)
    expect(binOf(undefined, true, 0)).toBe(NO_DATA)
  })
  it('shades by the figure against the largest when there is no target', () => {
    expect(binOf({ progress: null, actual: 10, available: true }, false, 10)).toBe(AMOUNT_BINS[3])
    expect(binOf({ progress: null, actual: 1, available: true }, false, 10)).toBe(AMOUNT_BINS[0])
  })
})

describe('shapesFor', () => {
  const shapes: DivisionShapes = {
    province: { code: '340000', name: '安徽省', box: [0, 0, 100, 100] },
    divisions: [
      { code: '341000', name: '黄山市', level: 'city', parent: '340000', box: [50, 50, 20, 20], d: 'M0 0z' },
      { code: '341021', name: '歙县', level: 'county', parent: '341000', box: [55, 55, 5, 5], d: 'M0 0z' },
      { code: '340102', name: '瑶海区', level: 'county', parent: '340100', box: [10, 10, 5, 5], d: 'M0 0z' },
    ],
  }
  it('draws the cities, a city’s counties, and a county (or its township) alone', () => {
    expect(shapesFor(shapes, '340000', 'province').drawn.map((s) => s.code)).toEqual(['341000'])
    const city = shapesFor(shapes, '341000', 'city')
    expect(city.drawn.map((s) => s.code)).toEqual(['341021'])
    expect(city.box).toEqual([50, 50, 20, 20])
    const township = shapesFor(shapes, '341021100', 'township')
    expect(township.drawn.map((s) => s.code)).toEqual(['341021'])
    expect(township.childrenDrawn).toBe(false)
  })
  it('pads the view box', () => {
    expect(viewBox([0, 0, 100, 50], 0.1)).toBe('-10 -10 120 70')
  })
})
