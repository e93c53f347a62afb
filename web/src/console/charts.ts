// ECharts, only the parts the dashboards draw (tree-shaken; loaded with the dashboard page only).
import { use, registerMap } from 'echarts/core'
import { CanvasRenderer } from 'echarts/renderers'
import { BarChart, LineChart, MapChart } from 'echarts/charts'
import { GridComponent, LegendComponent, TitleComponent, TooltipComponent, VisualMapComponent } from 'echarts/components'

use([CanvasRenderer, BarChart, LineChart, MapChart, GridComponent, LegendComponent, TitleComponent, TooltipComponent, VisualMapComponent])

let mapLoad: Promise<Map<string, string>> | null = null

/** Register the Anhui county polygons once; resolves to county code -> name. */
export function loadAnhuiMap(): Promise<Map<string, string>> {
  mapLoad ??= fetch('/console/data/anhui_counties.geojson')
    .then((r) => r.json())
    .then((geo: { features: Array<{ properties: { code: string; name: string } }> }) => {
      registerMap('anhui', geo as never)
      return new Map(geo.features.map((f) => [f.properties.code, f.properties.name]))
    })
  return mapLoad
}
