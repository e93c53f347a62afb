// The Anhui county polygons (data/anhui_counties.geojson, served at /console/data/), registered
// with ECharts once as the map 'anhui'; regions are named by county code (nameProperty: 'code').
import { registerMap } from 'echarts/core'

type Position = [number, number]
export interface CountyFeature {
  properties: { code: string; name: string }
  geometry: { type: 'Polygon' | 'MultiPolygon'; coordinates: Position[][] | Position[][][] }
}
interface CountyCollection { type: 'FeatureCollection'; features: CountyFeature[] }

let geoLoad: Promise<CountyCollection> | null = null

/** Fetch and register the county polygons once; resolves to the GeoJSON. */
export function loadAnhuiGeo(): Promise<CountyCollection> {
  geoLoad ??= fetch('/console/data/anhui_counties.geojson')
    .then((r) => {
      if (!r.ok) throw new Error(`county polygons: HTTP ${r.status}`)
      return r.json() as Promise<CountyCollection>
    })
    .then((geo) => {
      registerMap('anhui', geo as never)
      return geo
    })
    .catch((e: unknown) => {
      geoLoad = null // a later page may try again
      throw e
    })
  return geoLoad
}

/** [west, south, east, north] of a county's polygon(s). */
export function bboxOf(feature: CountyFeature): [number, number, number, number] {
  const box: [number, number, number, number] = [180, 90, -180, -90]
  const polygons = (feature.geometry.type === 'Polygon' ? [feature.geometry.coordinates] : feature.geometry.coordinates) as Position[][][]
  for (const polygon of polygons)
    for (const ring of polygon)
      for (const [lon, lat] of ring) {
        box[0] = Math.min(box[0], lon)
        box[1] = Math.min(box[1], lat)
        box[2] = Math.max(box[2], lon)
        box[3] = Math.max(box[3], lat)
      }
  return box
}

/** What the case map shows: the case's county filling it, else around the point, else the province. */
export function mapView(
  point: Position | null,
  county: [number, number, number, number] | null,
): { center: Position; zoom: number } {
  if (county) {
    const [w, s, e, n] = county
    const span = Math.max(e - w, n - s, 0.05)
    // The province is about 5 degrees high: zoom so the county fills the small map, centred on it.
    const zoom = Math.min(12, Math.max(1, 4.6 / span))
    return { center: [(w + e) / 2, (s + n) / 2], zoom }
  }
  return { center: point ?? [117.2, 31.8], zoom: point ? 6 : 1 }
}
